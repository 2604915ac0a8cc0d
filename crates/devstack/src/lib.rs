//! What `make run`, the end-to-end tests and the benchmark share: connecting the simulator's demo
//! channels through the gateway the way a workspace admin does in the browser ([`connect`]).

pub mod connect;
