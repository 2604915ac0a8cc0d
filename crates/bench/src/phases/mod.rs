//! The phases. Each sets up its own bus prefix (and services), runs, tears down, and returns
//! an [`Outcome`]: a phase whose binaries are missing is skipped, one that breaks is reported as
//! failed, and the run goes on either way.

mod account;
mod inbox_consume;
mod jetstream;
mod pipeline;
mod receivers;
mod reply;

use std::sync::Arc;

use scifer_events::{Bus, StreamKind};
use scifer_test_support::{ServiceProcess, binary_path};

use crate::{
    bodies::BodyFactory,
    error::{BenchError, Result},
    report::{Figures, Outcome},
    settings::{Phase, Settings},
};

/// What every phase gets.
pub struct Ctx {
    pub nats_url: String,
    pub settings: Settings,
    pub factory: Arc<BodyFactory>,
}

pub async fn run(phase: Phase, ctx: &Ctx) -> Outcome {
    let needs: &[&str] = match phase {
        Phase::JetStream | Phase::Minimal => &[],
        Phase::Ingest | Phase::IngestReceiver => &["webhook-ingest"],
        Phase::Pipeline => &["webhook-ingest", "inbox", "gateway"],
        Phase::Reply => &["webhook-ingest", "inbox", "gateway", "token-vault"],
        Phase::InboxConsume => &["inbox"],
    };
    if let Some(reason) = missing_binaries(needs) {
        return Outcome::Skipped(reason);
    }
    let bus = match phase_bus(phase) {
        Ok(bus) => bus,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let result = match phase {
        Phase::JetStream => jetstream::run(ctx, &bus).await.map(Figures::JetStream),
        Phase::Minimal => receivers::minimal(ctx, &bus).await.map(Figures::Http),
        Phase::Ingest | Phase::IngestReceiver => receivers::ingest(ctx, &bus, phase).await.map(Figures::Http),
        Phase::Pipeline => pipeline::run(ctx, &bus).await.map(Figures::Pipeline),
        Phase::Reply => reply::run(ctx, &bus).await.map(Figures::Reply),
        Phase::InboxConsume => inbox_consume::run(ctx, &bus).await.map(Figures::Consume),
    };
    delete_streams(ctx, &bus).await;
    match result {
        Ok(figures) => Outcome::Ran(figures),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// A bus of its own for one phase.
fn phase_bus(phase: Phase) -> Result<Bus> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Ok(Bus::new(&format!("bench-{}-{}", phase.name(), &tag[..8]))?)
}

/// Frees the phase's streams so the next phase starts on an empty store (a 10 s raw JetStream run
/// leaves ~1.5 GB behind) and the server does not flush one phase's data during another.
async fn delete_streams(ctx: &Ctx, bus: &Bus) {
    let Ok(client) = scifer_events::connect(&ctx.nats_url).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    for kind in [
        StreamKind::Ingest,
        StreamKind::Meta,
        StreamKind::Channels,
        StreamKind::Inbox,
        StreamKind::Audit,
    ] {
        let _ = js.delete_stream(bus.stream_name(kind)).await;
    }
}

fn missing_binaries(names: &[&str]) -> Option<String> {
    let missing: Vec<String> = names
        .iter()
        .map(|n| binary_path(n))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not built (build with `cargo build --release --bins` and set SCIFER_BIN_PROFILE=release, \
             or run `make bench`)",
            missing.join(", ")
        )
    })
}

/// Starts a service binary and waits for `health_url`. The harness panics when the binary does not
/// come up; that panic is caught here and becomes an error carrying the end of the service's log.
async fn start_service(
    name: &'static str,
    env: Vec<(&'static str, String)>,
    health_url: String,
) -> Result<ServiceProcess> {
    let started = tokio::spawn(async move { ServiceProcess::start(name, &env, &health_url).await }).await;
    started.map_err(|e| {
        let detail = if e.is_panic() {
            let payload = e.into_panic();
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panicked".into())
        } else {
            e.to_string()
        };
        BenchError::msg(format!("{name} did not start: {}", tail(&detail, 1500)))
    })
}

/// The last `max` bytes of `text` (at a char boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// `host:port` on loopback with a free port.
fn loopback_addr() -> String {
    format!("127.0.0.1:{}", scifer_test_support::free_port())
}
