//! How fast inbox turns a MetaEvent backlog into stored messages, against the raw JetStream pull
//! rate of the same backlog in the same run.
//!
//! The backlog: `events` inbound Messenger messages from 200 customers of one connected Page,
//! published to the META stream while no consumer runs. Then, one after the other:
//! - raw: a durable pull consumer of the bench drains it through `scifer_events::consume_batches`
//!   (the loop inbox runs, same batch size and linger) with a handler that only acks;
//! - inbox: the release binary starts on a store that already knows the channel (a first start
//!   applied it and was stopped before the backlog existed) and drains it into SQLite.
//!
//! Both are timed the same way, from the server's view of the durable consumer (polled every 2 ms):
//! from the first poll that shows a delivery to the poll that shows every event acknowledged.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use async_nats::jetstream::{self, stream::Stream};
use scifer_events::{BatchOptions, Bus, Outcome, Publisher, StreamKind};
use scifer_plumbing::CancellationToken;
use scifer_proto::{
    events::v1::{self as ev, ChannelKind, MetaEvent, meta_event::Kind},
    inbox::v1::{ListConversationsRequest, inbox_service_client::InboxServiceClient},
};
use scifer_test_support::{ServiceProcess, TestDb};
use tonic::metadata::MetadataValue;

use super::{Ctx, loopback_addr, pipeline::seed_channel, start_service};
use crate::{
    bodies::PAGE_ID,
    error::{BenchError, Result},
    report::ConsumeFigures,
    sys::{self, CpuMeter},
};

/// Customers the backlog's messages come from (one conversation each).
const CUSTOMERS: usize = 200;
/// inbox's durable consumers (`services/inbox/src/startup.rs`).
const INBOX_META_CONSUMER: &str = "inbox-meta";
const INBOX_CHANNEL_CONSUMER: &str = "inbox-channels";
const RAW_CONSUMER: &str = "bench-raw";
/// Both consumers wait this long for a batch to fill (inbox's default `CONSUMER_LINGER_MS`).
const LINGER: Duration = Duration::from_millis(10);
/// Long enough that no batch is redelivered while still in flight.
const ACK_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(2);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// JetStream publishes in flight while filling the backlog.
const PUBLISH_WINDOW: usize = 256;

pub async fn run(ctx: &Ctx, bus: &Bus) -> Result<ConsumeFigures> {
    let st = &ctx.settings;
    let events = st.events;
    let client = scifer_events::connect(&ctx.nats_url).await?;
    let js = jetstream::new(client);
    let meta = bus.ensure_default_stream(&js, StreamKind::Meta).await?;
    bus.ensure_default_stream(&js, StreamKind::Channels).await?;
    let workspace = uuid::Uuid::new_v4().to_string();
    seed_channel(&js, bus, &workspace).await?;

    // First start: inbox applies the channel and creates its durable consumers; it is stopped
    // before the backlog exists, so the measured start finds only MetaEvents to drain.
    let db = TestDb::sqlite();
    let inbox_env = |grpc_addr: &str| {
        vec![
            ("NATS_URL", ctx.nats_url.clone()),
            ("BUS_PREFIX", bus.prefix().to_string()),
            ("RUST_LOG", "warn".to_string()),
            ("GRPC_ADDR", grpc_addr.to_string()),
            ("DATABASE_URL", db.url().to_string()),
            ("CONSUMER_BATCH_SIZE", st.consumer_batch.to_string()),
            ("CONSUMER_LINGER_MS", LINGER.as_millis().to_string()),
            ("CONSUMER_ACK_WAIT_SECS", ACK_WAIT.as_secs().to_string()),
        ]
    };
    let addr = loopback_addr();
    let first = start_service("inbox", inbox_env(&addr), format!("http://{addr}/readyz")).await?;
    let channels = js.get_stream(bus.stream_name(StreamKind::Channels)).await?;
    let channel_seq = channels.get_info().await?.state.last_sequence;
    wait_acked(
        &channels,
        INBOX_CHANNEL_CONSUMER,
        channel_seq,
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| BenchError::msg(format!("inbox did not apply the channel: {e}")))?;
    stop(first).await;

    let (publish_secs, last_seq) = fill(&js, bus, events).await?;

    // Raw: the inbox's consume loop with a handler that does nothing but ack.
    let raw_consumer =
        scifer_events::durable_consumer(&meta, RAW_CONSUMER, bus.meta_events_filter(), ACK_WAIT)
            .await
            .map_err(|e| BenchError::msg(format!("cannot create the raw consumer: {e}")))?;
    let options = BatchOptions {
        max_messages: st.consumer_batch,
        linger: LINGER,
    };
    let shutdown = CancellationToken::new();
    let raw_task = tokio::spawn(scifer_events::consume_batches(
        raw_consumer,
        options,
        shutdown.clone(),
        |batch| async move { vec![Outcome::Ack; batch.len()] },
    ));
    let raw = wait_acked(&meta, RAW_CONSUMER, last_seq, DRAIN_TIMEOUT).await;
    shutdown.cancel();
    let _ = raw_task.await;
    let raw = raw?;
    meta.delete_consumer(RAW_CONSUMER).await.ok();

    // inbox: the same backlog into its store.
    let nats_cpu = CpuMeter::process(sys::child_pid("nats-server"));
    let addr = loopback_addr();
    let env = inbox_env(&addr);
    let health = format!("http://{addr}/readyz");
    // The clock runs from the server's view, so the drain is watched while inbox starts.
    let watched = meta.clone();
    let watch =
        tokio::spawn(async move { wait_acked(&watched, INBOX_META_CONSUMER, last_seq, DRAIN_TIMEOUT).await });
    let inbox = match start_service("inbox", env, health).await {
        Ok(inbox) => inbox,
        Err(e) => {
            watch.abort();
            return Err(e);
        }
    };
    let drained = watch
        .await
        .map_err(|e| BenchError::msg(format!("watching the drain: {e}")))?
        .map_err(|e| BenchError::msg(format!("{e}\n{}", super::tail(&inbox.log_text(), 1500))))?;
    // The whole process, startup and migrations included; the drain dominates.
    let inbox_cpu_us_per_event = sys::process_ticks(inbox.pid().unwrap_or_default())
        .map(|ticks| ticks as f64 / sys::clock_ticks_per_sec() * 1e6 / events as f64);
    let nats_cpu_us_per_event = nats_cpu.micros_per(events as u64);
    let stored = stored_messages(&addr, &workspace).await?;
    let redelivered = meta
        .consumer_info(INBOX_META_CONSUMER)
        .await
        .map(|i| i.num_redelivered as u64)
        .unwrap_or_default();
    stop(inbox).await;
    drop(db);

    Ok(ConsumeFigures {
        events: events as u64,
        batch: st.consumer_batch,
        linger_ms: LINGER.as_secs_f64() * 1000.0,
        publish_per_sec: events as f64 / publish_secs.max(1e-9),
        raw_secs: raw.secs,
        raw_per_sec: raw.per_sec(),
        inbox_secs: drained.secs,
        inbox_per_sec: drained.per_sec(),
        stored_messages: stored,
        redelivered,
        inbox_cpu_us_per_event,
        nats_cpu_us_per_event,
    })
}

/// Publishes the backlog, `PUBLISH_WINDOW` acks in flight; returns the seconds it took and the
/// stream's last sequence.
async fn fill(js: &jetstream::Context, bus: &Bus, events: usize) -> Result<(f64, u64)> {
    let publisher = Publisher::new(js.clone());
    let subject = bus.meta_event(ChannelKind::Messenger, "message");
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(PUBLISH_WINDOW);
    for i in 0..events {
        let event = inbound(i);
        in_flight.push_back(publisher.send(subject.clone(), &event.event_id, &event).await?);
        if in_flight.len() >= PUBLISH_WINDOW
            && let Some(ack) = in_flight.pop_front()
        {
            ack.await?;
        }
    }
    let mut last_seq = 0;
    for ack in in_flight {
        last_seq = ack.await?.sequence;
    }
    let secs = started.elapsed().as_secs_f64();
    let info = js
        .get_stream(bus.stream_name(StreamKind::Meta))
        .await?
        .get_info()
        .await?;
    if info.state.messages != events as u64 {
        return Err(BenchError::msg(format!(
            "the META stream holds {} messages, {events} were published",
            info.state.messages
        )));
    }
    Ok((secs, last_seq.max(info.state.last_sequence)))
}

/// The `i`th inbound text of the backlog, as webhook-ingest's splitter would publish it.
fn inbound(i: usize) -> MetaEvent {
    const BASE_MS: i64 = 1_767_225_600_000;
    let c = i % CUSTOMERS;
    let psid = (6_140_000_000_000_000_u64 + c as u64 * 7_919).to_string();
    let at = BASE_MS + i as i64 * 3;
    let mid = format!("m_bench_{i:010}_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
    let text = format!(
        "Hi! I ordered the linen shirt in navy last Tuesday (order #{}) and the tracking page still \
         says \"label created\". Could you check whether it left the warehouse? (customer {c})",
        10_000 + i
    );
    let raw = format!(
        r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE_ID}"}},"timestamp":{at},"message":{{"mid":"{mid}","text":"{text}"}}}}"#,
        text = text.replace('"', "\\\"")
    );
    MetaEvent {
        event_id: format!("msg:{mid}"),
        delivery_id: format!("{i:064x}"),
        received_at: Some(prost_types::Timestamp {
            seconds: (at + 150) / 1000,
            nanos: i32::try_from(((at + 150) % 1000) * 1_000_000).unwrap_or(0),
        }),
        channel_kind: ChannelKind::Messenger as i32,
        account_id: PAGE_ID.into(),
        business_account_id: String::new(),
        standby: false,
        raw_item_json: raw,
        reconciled: false,
        kind: Some(Kind::Message(ev::InboundMessage {
            external_id: mid,
            contact_id: psid,
            contact_name: format!("Customer {c}"),
            sent_at_ms: at,
            text,
            message_type: "text".into(),
            ..Default::default()
        })),
    }
}

/// A drain as the server saw it.
struct Drain {
    /// Events acknowledged between the first poll that showed a delivery and the last poll.
    events: u64,
    secs: f64,
}

impl Drain {
    fn per_sec(&self) -> f64 {
        self.events as f64 / self.secs.max(1e-9)
    }
}

/// Polls `consumer` on `stream` until everything up to `last_seq` is acknowledged. The clock
/// starts at the first poll showing a delivery (the consumer may not exist before that); events
/// already acknowledged at that poll are not counted.
async fn wait_acked(stream: &Stream, consumer: &str, last_seq: u64, timeout: Duration) -> Result<Drain> {
    let deadline = Instant::now() + timeout;
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        if let Ok(info) = stream.consumer_info(consumer).await {
            if first.is_none() && info.delivered.stream_sequence > 0 {
                first = Some((now, info.ack_floor.stream_sequence));
            }
            if info.ack_floor.stream_sequence >= last_seq && info.num_ack_pending == 0 {
                let (since, acked) = first.unwrap_or((now, 0));
                return Ok(Drain {
                    events: last_seq - acked,
                    secs: now.duration_since(since).as_secs_f64(),
                });
            }
        }
        if now > deadline {
            return Err(BenchError::msg(format!(
                "{consumer} had not acknowledged up to sequence {last_seq} after {timeout:?}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// SIGTERM and a graceful exit (off the runtime: it waits on the child).
async fn stop(mut process: ServiceProcess) {
    let _ = tokio::task::spawn_blocking(move || process.terminate(Duration::from_secs(10))).await;
}

/// Messages in the workspace's conversations, from inbox's own API.
async fn stored_messages(addr: &str, workspace: &str) -> Result<u64> {
    let mut client = InboxServiceClient::connect(format!("http://{addr}"))
        .await
        .map_err(|e| BenchError::msg(format!("cannot connect to inbox at {addr}: {e}")))?;
    let workspace: MetadataValue<_> = workspace
        .parse()
        .map_err(|_| BenchError::msg("workspace id is not valid metadata"))?;
    let (mut total, mut page_token) = (0u64, String::new());
    loop {
        let mut request = tonic::Request::new(ListConversationsRequest {
            page_size: 200,
            page_token: page_token.clone(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("x-scifer-workspace-id", workspace.clone());
        let page = client
            .list_conversations(request)
            .await
            .map_err(|s| BenchError::msg(format!("inbox ListConversations: {s}")))?
            .into_inner();
        total += page
            .conversations
            .iter()
            .map(|c| u64::try_from(c.message_count).unwrap_or(0))
            .sum::<u64>();
        if page.next_page_token.is_empty() {
            return Ok(total);
        }
        page_token = page.next_page_token;
    }
}
