//! deletion: Disconnect clean-up, data export and data-deletion requests, including Meta's data-deletion callback.
//! Until its issue lands it is a running skeleton: config, telemetry, health, graceful shutdown.

mod grpc;
mod startup;

pub use startup::{Application, Config, StartupError};
