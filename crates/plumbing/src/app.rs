//! The shape of every service binary: `main` calls [`run`] with the service's name and a closure
//! that builds and runs the service until the shutdown token is cancelled.

use std::{future::Future, process::ExitCode};

use tokio_util::sync::CancellationToken;

/// Installs the crypto provider and telemetry, wires SIGTERM/ctrl-c to a cancellation token, runs
/// `service`, and flushes traces before exit. A failure is logged with its whole cause chain (which
/// never holds secrets: config types redact them) and gives exit code 1.
pub async fn run<F, Fut, E>(name: &'static str, service: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error,
{
    crate::install_crypto_provider();
    let telemetry = match crate::telemetry::init(name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: cannot start telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = crate::shutdown::on_signals();
    let result = service(shutdown).await;
    let code = match &result {
        Ok(()) => {
            tracing::info!(service = name, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service = name, error = %error_chain(e), "failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

/// `outer: inner: innermost`, for logging an error with its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
