//! publisher: drafts, approvals, scheduling and publishing of posts. Until its issue lands it is a
//! running skeleton: config, telemetry, health, graceful shutdown and an informational gRPC service.

mod grpc;
mod startup;

pub use startup::{Application, Config, StartupError};
