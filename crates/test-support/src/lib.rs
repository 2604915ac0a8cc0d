//! Test harness shared by every service's integration tests and the end-to-end suite. Each test gets
//! its own nats-server (own port, own store directory) and its own database, so tests run in
//! parallel and leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod db;
mod grpc_web;
mod nats;
mod process;
mod skeleton;

pub use db::{TestDb, postgres_selected};
pub use grpc_web::{GrpcWebChannel, grpc_web_channel};
pub use nats::{NatsServer, nats_server_binary};
pub use process::{ServiceProcess, binary_path, free_port, wait_until};
pub use skeleton::{RunningSkeleton, start_skeleton};

/// A bus prefix unique to one test.
pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The workspace root (where `Cargo.toml` with `[workspace]` lives).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}
