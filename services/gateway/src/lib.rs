//! gateway: the public edge that browser frontends and other clients reach. One port serves
//! `scifer.gateway.v1.InboxApi` over native gRPC (h2c) and gRPC-web (HTTP/1.1), the standard gRPC
//! health and reflection services, and `/healthz` / `/readyz`, all behind one CORS layer.
//!
//! Reads are forwarded to the inbox service with the workspace in `x-scifer-workspace-id`;
//! `WatchInbox` streams the workspace's `InboxEvent`s straight from the bus.
//!
//! Settings (environment, or `SCIFER_CONFIG_FILE`):
//! `LISTEN_ADDR` (127.0.0.1:8080), `INBOX_URL` (http://127.0.0.1:9082), `INBOX_TIMEOUT_MS` (5000),
//! `CORS_ALLOWED_ORIGINS` (comma-separated; empty), and the common `NATS_URL`, `BUS_PREFIX`,
//! `SHUTDOWN_GRACE_SECS`.

mod config;
mod cors;
mod error;
mod grpc;
mod inbox;
mod startup;
mod watch;

pub use config::Config;
pub use error::GatewayError;
pub use inbox::WORKSPACE_METADATA;
pub use scifer_ids::{InvalidWorkspaceId, WorkspaceId};
pub use startup::{Application, StartupError};
pub use watch::{ActiveWatches, WATCH_BUFFER};
