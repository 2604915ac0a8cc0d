//! The two closed-loop HTTP phases: the in-process minimal receiver and the real webhook-ingest,
//! driven identically.

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use scifer_events::{Bus, StreamKind};

use super::{Ctx, loopback_addr, start_service};
use crate::{
    bodies::{APP_SECRET, VERIFY_TOKEN},
    driver::{self, Target},
    error::{BenchError, Result},
    lag::LagSampler,
    minimal::{self, MinimalReceiver},
    report::{HttpFigures, Latency},
    settings::Phase,
    sys::{self, CpuMeter},
};

pub async fn minimal(ctx: &Ctx, bus: &Bus) -> Result<HttpFigures> {
    let receiver = MinimalReceiver::start(&ctx.nats_url, bus.clone()).await?;
    let figures = drive(
        ctx,
        &receiver.url(),
        Phase::Minimal,
        || CpuMeter::threads(minimal::THREAD_NAME),
        None,
    )
    .await;
    receiver.stop().await;
    figures
}

/// The real webhook-ingest; for [`Phase::IngestReceiver`] with its splitter switched off.
pub async fn ingest(ctx: &Ctx, bus: &Bus, phase: Phase) -> Result<HttpFigures> {
    let listen = loopback_addr();
    let splitter = phase != Phase::IngestReceiver;
    let env = vec![
        ("SPLITTER_ENABLED", splitter.to_string()),
        ("NATS_URL", ctx.nats_url.clone()),
        ("BUS_PREFIX", bus.prefix().to_string()),
        ("LISTEN_ADDR", listen.clone()),
        ("ADMIN_ADDR", loopback_addr()),
        ("META_APP_SECRET", APP_SECRET.to_string()),
        ("META_VERIFY_TOKEN", VERIFY_TOKEN.to_string()),
        ("RUST_LOG", "warn".to_string()),
    ];
    let service = start_service("webhook-ingest", env, format!("http://{listen}/readyz")).await?;
    let pid = service.pid();
    // Watch the splitter (it shares the process and the CPUs) while the receiver is under load.
    let client = scifer_events::connect(&ctx.nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let streams = vec![
        bus.stream_name(StreamKind::Ingest),
        bus.stream_name(StreamKind::Meta),
    ];
    let figures = drive(
        ctx,
        &format!("http://{listen}/webhooks/meta"),
        phase,
        move || CpuMeter::process(pid),
        Some((js, streams)),
    )
    .await;
    drop(service);
    figures
}

/// How long the ingest phase waits for the splitter to catch up after the load.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// One request to check the receiver accepts our bodies, then the closed loop.
async fn drive(
    ctx: &Ctx,
    url: &str,
    phase: Phase,
    receiver_cpu: impl Fn() -> CpuMeter,
    lag: Option<(async_nats::jetstream::Context, Vec<String>)>,
) -> Result<HttpFigures> {
    let st = &ctx.settings;
    let target = Arc::new(Target::new(url, st.connections)?);
    let probe = ctx.factory.make(phase.seq_base() + (1 << 40));
    match target.post(probe.body, &probe.signature).await? {
        StatusCode::OK => {}
        status => {
            return Err(BenchError::msg(format!(
                "{url} answered {status} to a correctly signed delivery"
            )));
        }
    }

    let sampler = lag.map(|(js, streams)| LagSampler::start(js, streams));
    // CPU is measured over warm-up plus run and divided by the requests of both; the warm-up's
    // share is estimated from the measured rate (close enough for a per-request budget).
    let rx_cpu = receiver_cpu();
    let nats_cpu = CpuMeter::process(sys::child_pid("nats-server"));
    let result = driver::closed_loop(
        target,
        ctx.factory.clone(),
        phase.seq_base(),
        st.connections,
        st.warmup,
        st.duration,
    )
    .await?;
    let total_secs = result.measured.as_secs_f64() + st.warmup.as_secs_f64();
    let estimated_total = (result.accepted_per_sec() * total_secs).round() as u64;
    let receiver_cpu_us_per_req = rx_cpu.micros_per(estimated_total);
    let nats_cpu_us_per_req = nats_cpu.micros_per(estimated_total);
    let consumers = match sampler {
        Some(sampler) => {
            let end = sampler.mark_end_of_load().await;
            sampler.wait_drained(DRAIN_TIMEOUT).await;
            sampler.finish(end).await
        }
        None => Vec::new(),
    };
    Ok(HttpFigures {
        connections: st.connections,
        connections_opened: result.connections_opened,
        secs: result.measured.as_secs_f64(),
        accepted: result.ok,
        accepted_per_sec: result.accepted_per_sec(),
        non_200: result.non_200,
        errors: result.errors,
        latency: Latency::from_micros(&result.latency_us),
        receiver_cpu_us_per_req,
        nats_cpu_us_per_req,
        consumers,
        first_error: result.first_error,
    })
}
