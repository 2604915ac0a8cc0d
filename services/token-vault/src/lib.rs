//! token-vault: Holds channel tokens encrypted under per-workspace keys and makes every Graph API call for the other services.
//! Until its issue lands it is a running skeleton: config, telemetry, health, graceful shutdown.

mod grpc;
mod startup;

pub use startup::{Application, Config, StartupError};
