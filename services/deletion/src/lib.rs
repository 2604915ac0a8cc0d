//! deletion: Disconnect clean-up, data export and data-deletion requests, including Meta's data-deletion callback.
//! Until its issue lands it is a running skeleton: config, telemetry, health, graceful shutdown.

mod grpc;

pub use grpc::Deletion;
pub use scifer_plumbing::skeleton::{Config, Skeleton as Application, SkeletonError as StartupError};

/// Where it listens unless `GRPC_ADDR` says otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9085";

pub async fn build(config: Config) -> Result<Application, StartupError> {
    Application::build("deletion", config, DEFAULT_GRPC_ADDR).await
}
