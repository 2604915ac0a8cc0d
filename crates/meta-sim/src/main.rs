//! `scifer-meta-sim`: see `scifer_meta_sim::cli::USAGE`.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cmd = match scifer_meta_sim::cli::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match scifer_meta_sim::app::run(cmd, scifer_meta_sim::app::shutdown_signal()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "failed");
            ExitCode::FAILURE
        }
    }
}
