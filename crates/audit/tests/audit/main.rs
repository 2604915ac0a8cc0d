//! The audit crate against real stores (SQLite, or PostgreSQL with `SCIFER_TEST_DB=postgres`) and
//! a private nats-server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod pipeline;
mod store;
