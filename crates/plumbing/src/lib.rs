//! What every Scifer service needs to start and stop, written once so that each service's `main`
//! stays a readable page: layered configuration, tracing with OpenTelemetry and trace-context
//! propagation, a shutdown signal, health, and serving gRPC and HTTP on a listener.

pub mod app;
pub mod config;
pub mod grpc;
pub mod health;
pub mod serve;
pub mod service_identity;
pub mod shutdown;
pub mod skeleton;
pub mod telemetry;

pub use app::{error_chain, run};
pub use tokio_util::sync::CancellationToken;

/// Installs ring as the process's one rustls crypto provider. reqwest is built with
/// `rustls-no-provider` (so aws-lc-rs never enters the binary) and panics on its first client
/// unless a provider was installed, so every binary calls this before building clients.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: that is the state we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
