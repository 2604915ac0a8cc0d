//! Running a parsed command: what the binary does, kept here so it is testable.

use std::future::Future;
use std::time::Duration;

use crate::cli::{Command, DemoArgs, SendArgs, USAGE, VerifyArgs};
use crate::demo::{self, DEMO_CUSTOMERS, DemoConfig};
use crate::webhooks::{RetryPolicy, SendError, WebhookSender, verify};

/// Run `cmd` until done or until `shutdown` resolves. Returns whether it succeeded (the
/// process exit status): a 200 for `send`, an echoed challenge for `verify`.
pub async fn run(cmd: Command, shutdown: impl Future<Output = ()>) -> Result<bool, SendError> {
    match cmd {
        Command::Help => {
            print!("{USAGE}");
            Ok(true)
        }
        Command::Demo(args) => run_demo(args, shutdown).await,
        Command::Send(args) => {
            tokio::select! {
                r = run_send(args) => r,
                () = shutdown => Ok(false),
            }
        }
        Command::Verify(args) => {
            tokio::select! {
                r = run_verify(args) => r,
                () = shutdown => Ok(false),
            }
        }
    }
}

async fn run_demo(args: DemoArgs, shutdown: impl Future<Output = ()>) -> Result<bool, SendError> {
    let mut config = DemoConfig::new(args.webhook_url, args.app_secret);
    config.interval = Duration::from_millis(args.interval_ms);
    config.count = args.count;
    let summary = demo::run_demo(config, shutdown).await?;
    Ok(summary.dropped == 0)
}

async fn run_send(args: SendArgs) -> Result<bool, SendError> {
    let customer = DEMO_CUSTOMERS.get(args.customer).unwrap_or(&DEMO_CUSTOMERS[0]);
    let delivery = demo::poke(args.kind, customer, &args.text);
    let sender = WebhookSender::new(args.app_secret)?;
    let policy = if args.retry {
        DemoConfig::new("", crate::AppSecret::new("")).retry
    } else {
        RetryPolicy::none()
    };
    let report = sender
        .deliver_with_retry(&args.webhook_url, &delivery, &args.mode, &policy)
        .await;
    for a in &report.attempts {
        match &a.result {
            Ok(o) => println!("attempt {}: HTTP {} {}", a.number, o.status.as_u16(), o.body),
            Err(e) => println!("attempt {}: error: {e}", a.number),
        }
    }
    tracing::info!(kind = ?args.kind, mode = ?args.mode, attempts = report.attempts.len(), delivered = report.delivered(), "sent");
    Ok(report.delivered())
}

async fn run_verify(args: VerifyArgs) -> Result<bool, SendError> {
    let challenge = args.challenge.unwrap_or_else(verify::new_challenge);
    let outcome = verify::verify_subscription(&args.webhook_url, &args.verify_token, &challenge).await?;
    println!("HTTP {} {}", outcome.status.as_u16(), outcome.body);
    if outcome.challenge_echoed {
        println!("verified: the challenge was echoed");
    } else {
        println!("NOT verified: Meta would refuse this callback URL");
    }
    Ok(outcome.challenge_echoed)
}

/// Resolves on ctrl-c or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: never resolve rather than exit at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received, stopping"),
        () = term => tracing::info!("SIGTERM received, stopping"),
    }
}
