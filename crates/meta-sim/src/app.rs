//! Running a parsed command: what the binary does, kept here so it is testable.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

use crate::cli::{Command, DemoArgs, GraphArgs, SendArgs, USAGE, VerifyArgs};
use crate::demo::{self, DEMO_CUSTOMERS, DemoConfig};
use crate::graph::{GraphSim, GraphSimConfig};
use crate::webhooks::{RetryPolicy, SendError, WebhookSender, verify};

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Sending webhooks failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The Graph server could not listen or stopped with an error.
    #[error("Graph API server on {addr}")]
    Graph {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Run `cmd` until done or until `shutdown` resolves. Returns whether it succeeded (the
/// process exit status): a 200 for `send`, an echoed challenge for `verify`.
pub async fn run(cmd: Command, shutdown: impl Future<Output = ()>) -> Result<bool, AppError> {
    match cmd {
        Command::Help => {
            print!("{USAGE}");
            Ok(true)
        }
        Command::Demo(args) => run_demo(args, shutdown).await,
        Command::Graph(args) => run_graph(args, shutdown).await.map(|()| true),
        Command::Send(args) => {
            tokio::select! {
                r = run_send(args) => Ok(r?),
                () = shutdown => Ok(false),
            }
        }
        Command::Verify(args) => {
            tokio::select! {
                r = run_verify(args) => Ok(r?),
                () = shutdown => Ok(false),
            }
        }
    }
}

/// `shutdown` fanned out: the returned future fires it, the receiver's clones observe it.
fn fan_out(shutdown: impl Future<Output = ()>) -> (impl Future<Output = ()>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let fire = async move {
        shutdown.await;
        tx.send_replace(true);
    };
    (fire, rx)
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // Err = sender gone, which only happens after it fired.
    let _ = rx.wait_for(|s| *s).await;
}

async fn bind_graph(
    addr: SocketAddr,
    app_id: String,
    secret: crate::AppSecret,
) -> Result<(GraphSim, tokio::net::TcpListener), AppError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Graph { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| AppError::Graph { addr, source })?;
    let sim = GraphSim::with_demo_world(GraphSimConfig::new(app_id, secret));
    tracing::info!(addr = %local, app_id = %sim.app_id(), "Graph API simulator listening (demo world)");
    Ok((sim, listener))
}

async fn run_graph(args: GraphArgs, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    let (sim, listener) = bind_graph(args.addr, args.app_id, args.app_secret).await?;
    let (fire, rx) = fan_out(shutdown);
    let (served, ()) = tokio::join!(sim.serve(listener, stopped(rx)), fire);
    served.map_err(|source| AppError::Graph {
        addr: args.addr,
        source,
    })
}

async fn run_demo(args: DemoArgs, shutdown: impl Future<Output = ()>) -> Result<bool, AppError> {
    let mut config = DemoConfig::new(args.webhook_url, args.app_secret.clone());
    config.interval = Duration::from_millis(args.interval_ms);
    config.count = args.count;
    let Some(addr) = args.graph_addr else {
        let summary = demo::run_demo(config, shutdown).await?;
        return Ok(summary.dropped == 0);
    };
    // Webhooks and the Graph API side by side; the Graph server keeps serving after a
    // `--count`-limited demo ends, until shutdown.
    let (sim, listener) = bind_graph(addr, args.app_id, args.app_secret).await?;
    config.graph = Some(sim.clone());
    let (fire, rx) = fan_out(shutdown);
    let (served, summary, ()) = tokio::join!(
        sim.serve(listener, stopped(rx.clone())),
        demo::run_demo(config, stopped(rx)),
        fire
    );
    served.map_err(|source| AppError::Graph { addr, source })?;
    Ok(summary?.dropped == 0)
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
