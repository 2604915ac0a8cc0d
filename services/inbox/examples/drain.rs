//! How fast the Meta consumer drains a backlog: the figure to compare with webhook-ingest's intake.
//!
//! ```text
//! cargo run --release -p inbox --example drain -- [sqlite|postgres] [N]
//! ```
//!
//! Starts a private nats-server and a fresh database, connects one Messenger channel, pre-fills the
//! META stream with N events of realistic traffic (200 customers; mostly inbound messages, plus
//! echoes of the business's replies, delivery and read watermarks and reactions), then starts the
//! inbox `Application` as production runs it (telemetry installed, InboxEvents published) and times
//! how long the durable consumer takes until everything is acknowledged. Optional environment:
//! `CONSUMER_BATCH_SIZE`, `CONSUMER_LINGER_MS` (passed to the service's config), and
//! `DRAIN_TELEMETRY=0` to run without the tracing subscriber. PostgreSQL comes from
//! `SCIFER_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use inbox::{
    Application, Config,
    store::entity::{applied_event, message},
};
use scifer_events::{
    Bus, Outcome, Publisher,
    async_nats::jetstream::{self, AckKind},
};
use scifer_plumbing::CancellationToken;
use scifer_proto::events::v1::{
    self as ev, ChannelEvent, ChannelKind, ChannelState, MetaEvent, meta_event::Kind,
};
use scifer_test_support::{NatsServer, TestDb, unique_prefix};
use sea_orm::{EntityTrait, PaginatorTrait};

const CONTACTS: usize = 200;
const PAGE: &str = "104592301775423";
const BASE_MS: i64 = 1_767_225_600_000;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(20_000);
    scifer_plumbing::install_crypto_provider();
    let _telemetry = if std::env::var("DRAIN_TELEMETRY").is_ok_and(|v| v == "0") {
        None
    } else {
        Some(scifer_plumbing::telemetry::init("inbox").expect("telemetry"))
    };

    let nats = NatsServer::start().await;
    let db = match backend.as_str() {
        "sqlite" => TestDb::sqlite(),
        "postgres" => TestDb::postgres().await,
        other => panic!("unknown backend {other:?} (sqlite or postgres)"),
    };
    let prefix = unique_prefix();
    let mut vars = vec![
        ("GRPC_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("DATABASE_URL".to_string(), db.url().to_string()),
        ("NATS_URL".to_string(), nats.url()),
        ("BUS_PREFIX".to_string(), prefix.clone()),
        // Long enough that the slowest batch is never redelivered while in flight.
        ("CONSUMER_ACK_WAIT_SECS".to_string(), "120".to_string()),
    ];
    for key in ["CONSUMER_BATCH_SIZE", "CONSUMER_LINGER_MS"] {
        if let Ok(v) = std::env::var(key) {
            vars.push((key.to_string(), v));
        }
    }
    let config: Config = scifer_plumbing::config::load_from(None, vars).expect("config");
    let batch = config.batch_options();
    let app = Application::build(config).await.expect("build the inbox");

    let client = scifer_events::connect(&nats.url()).await.expect("connect");
    let js = jetstream::new(client);
    let publisher = Publisher::new(js.clone());
    let bus = Bus::new(&prefix).expect("prefix");

    // The channel is applied before the backlog is consumed, so no event waits as pending.
    let workspace = uuid::Uuid::now_v7().to_string();
    let channel = ChannelEvent {
        state_reason: String::new(),
        parent_account_id: String::new(),
        event_id: "ch-1-v1".into(),
        workspace_id: workspace.clone(),
        channel_id: "ch-1".into(),
        kind: ChannelKind::Messenger as i32,
        account_id: PAGE.into(),
        display_name: "Acme page".into(),
        state: ChannelState::Connected as i32,
        version: 1,
        at: None,
    };
    publisher
        .publish(
            bus.channel_event(ChannelState::Connected),
            &channel.event_id,
            &channel,
        )
        .await
        .expect("publish channel");
    connect_channel(&app).await;

    let events = traffic(n);
    let messages = events
        .iter()
        .filter(|e| matches!(e.kind, Some(Kind::Message(_) | Kind::Echo(_))))
        .count();
    let filled = Instant::now();
    let subject = bus.meta_event(ChannelKind::Messenger, "event");
    let mut in_flight = std::collections::VecDeque::new();
    for e in &events {
        in_flight.push_back(
            publisher
                .send(subject.clone(), &e.event_id, e)
                .await
                .expect("publish"),
        );
        if in_flight.len() >= 256 {
            in_flight.pop_front().expect("non-empty").await.expect("stored");
        }
    }
    for ack in in_flight {
        ack.await.expect("stored");
    }
    eprintln!(
        "drain: pre-filled {n} events ({messages} messages) in {:.1}s; batch {} linger {:?}; {backend}",
        filled.elapsed().as_secs_f64(),
        batch.max_messages,
        batch.linger
    );

    let mut consumer = app.meta_consumer();
    let store = app.db();
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    loop {
        let info = consumer.info().await.expect("consumer info");
        if info.num_pending == 0 && info.num_ack_pending == 0 && info.delivered.stream_sequence > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not drained after 10 minutes: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    // Counted before the shutdown, which closes the pool.
    let stored_messages = message::Entity::find()
        .count(&store)
        .await
        .expect("count messages");
    let applied = applied_event::Entity::find()
        .count(&store)
        .await
        .expect("count applied");
    shutdown.cancel();
    server.await.expect("join").expect("inbox stopped cleanly");

    assert_eq!(stored_messages as usize, messages, "every message stored");
    assert_eq!(applied as usize, n, "every event applied");
    println!(
        "drain {backend} N={n}: {:.2}s, {:.0} events/s (batch {})",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        batch.max_messages
    );
}

/// Fetches the ChannelEvent and runs it through the channel consumer's handler, then acks it.
async fn connect_channel(app: &Application) {
    let consumer = app.channel_consumer();
    let mut fetched = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch channel event");
    let mut batch = Vec::new();
    while let Some(msg) = fetched.next().await {
        batch.push(msg.expect("channel event"));
    }
    assert_eq!(batch.len(), 1, "one channel event");
    let outcomes = app.channel_handler().handle_batch(batch.clone()).await;
    assert_eq!(outcomes, vec![Outcome::Ack]);
    for msg in batch {
        msg.ack_with(AckKind::Ack).await.expect("ack");
    }
}

/// N events of a busy page, in Meta's time order: each customer writes, the business replies
/// (echoes), and Messenger reports delivery and read watermarks over the thread; now and then a
/// customer reacts to the business's last reply.
fn traffic(n: usize) -> Vec<MetaEvent> {
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut last_echo: Vec<Option<String>> = vec![None; CONTACTS];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let c = i % CONTACTS;
        let psid = format!("{}", 6_100_000_000_000_000_u64 + c as u64);
        let at = BASE_MS + i as i64 * 3;
        let (id, kind, raw) = match rng % 20 {
            0..=12 => {
                let mid = format!("m_in_{i:08}_{}", "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
                let text = format!(
                    "Hello, I have a question about order #{} (customer {c})",
                    10_000 + i
                );
                let raw = format!(
                    r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{at},"message":{{"mid":"{mid}","text":"{text}"}}}}"#
                );
                let kind = Kind::Message(ev::InboundMessage {
                    external_id: mid.clone(),
                    contact_id: psid.clone(),
                    contact_name: format!("Customer {c}"),
                    sent_at_ms: at,
                    text,
                    message_type: "text".into(),
                    ..Default::default()
                });
                (format!("msg:{mid}"), kind, raw)
            }
            13..=15 => {
                let mid = format!("m_out_{i:08}_{}", "ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210");
                let text = "Thanks for writing! An agent will get back to you shortly.".to_string();
                let raw = format!(
                    r#"{{"sender":{{"id":"{PAGE}"}},"recipient":{{"id":"{psid}"}},"timestamp":{at},"message":{{"mid":"{mid}","is_echo":true,"app_id":263902037430900,"text":"{text}"}}}}"#
                );
                last_echo[c] = Some(mid.clone());
                let kind = Kind::Echo(ev::OutboundEcho {
                    external_id: mid.clone(),
                    contact_id: psid.clone(),
                    sent_at_ms: at,
                    text,
                    app_id: "263902037430900".into(),
                    ..Default::default()
                });
                (format!("echo:{mid}"), kind, raw)
            }
            16 | 17 => {
                let raw = format!(
                    r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{at},"delivery":{{"watermark":{at}}}}}"#
                );
                let kind = Kind::Delivery(ev::Delivery {
                    contact_id: psid.clone(),
                    external_ids: vec![],
                    watermark_ms: at,
                });
                (format!("delivery:{psid}:{at}"), kind, raw)
            }
            18 => {
                let raw = format!(
                    r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{at},"read":{{"watermark":{at}}}}}"#
                );
                let kind = Kind::Read(ev::Read {
                    contact_id: psid.clone(),
                    watermark_ms: at,
                    external_id: String::new(),
                });
                (format!("read:{psid}:{at}"), kind, raw)
            }
            _ => match &last_echo[c] {
                Some(target) => {
                    let raw = format!(
                        r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{at},"reaction":{{"mid":"{target}","action":"react","reaction":"love","emoji":"\u2764"}}}}"#
                    );
                    let kind = Kind::Reaction(ev::Reaction {
                        contact_id: psid.clone(),
                        target_external_id: target.clone(),
                        added: true,
                        emoji: "❤".into(),
                        reaction: "love".into(),
                        at_ms: at,
                    });
                    (format!("reaction:{target}:{at}:true"), kind, raw)
                }
                // Nothing to react to yet: a read receipt instead.
                None => {
                    let raw = format!(
                        r#"{{"sender":{{"id":"{psid}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{at},"read":{{"watermark":{at}}}}}"#
                    );
                    let kind = Kind::Read(ev::Read {
                        contact_id: psid.clone(),
                        watermark_ms: at,
                        external_id: String::new(),
                    });
                    (format!("read:{psid}:{at}"), kind, raw)
                }
            },
        };
        out.push(MetaEvent {
            event_id: id,
            delivery_id: format!("{:064x}", rng as u128 * 0x1000_0000_0000_0001),
            received_at: Some(prost_types::Timestamp {
                seconds: (at + 150) / 1000,
                nanos: ((at + 150) % 1000) as i32 * 1_000_000,
            }),
            channel_kind: ChannelKind::Messenger as i32,
            account_id: PAGE.into(),
            business_account_id: String::new(),
            standby: false,
            raw_item_json: raw,
            reconciled: false,
            kind: Some(kind),
        });
    }
    out
}
