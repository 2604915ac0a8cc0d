//! publisher: drafts, approvals, scheduling and publishing of posts. Until its issue lands it is a
//! running skeleton: config, telemetry, health, graceful shutdown and an informational gRPC service.

mod grpc;

pub use grpc::Publisher;
pub use scifer_plumbing::skeleton::{Config, Skeleton as Application, SkeletonError as StartupError};

/// Where it listens unless `GRPC_ADDR` says otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9083";

pub async fn build(config: Config) -> Result<Application, StartupError> {
    Application::build("publisher", config, DEFAULT_GRPC_ADDR).await
}
