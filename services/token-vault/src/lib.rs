//! token-vault: Holds channel tokens encrypted under per-workspace keys and makes every Graph API call for the other services.
//! Until its issue lands it is a running skeleton: config, telemetry, health, graceful shutdown.

mod grpc;

pub use grpc::TokenVault;
pub use scifer_plumbing::skeleton::{Config, Skeleton as Application, SkeletonError as StartupError};

/// Where it listens unless `GRPC_ADDR` says otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9084";

pub async fn build(config: Config) -> Result<Application, StartupError> {
    Application::build("token-vault", config, DEFAULT_GRPC_ADDR).await
}
