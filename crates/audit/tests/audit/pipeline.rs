//! Emitter → bus → consumer → store, on a private nats-server with its own prefix.

use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use prost::Message;
use scifer_audit::{
    Actor, Audit, AuditEmitter, Outcome, action, consumer,
    store::{self, entity::audit_record},
};
use scifer_events::{BatchOptions, Bus, Publisher, async_nats::jetstream};
use scifer_test_support::{NatsServer, unique_prefix, wait_until};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, QueryOrder};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::helpers::{event, store, ws};

struct Pipeline {
    _nats: NatsServer,
    js: jetstream::Context,
    bus: Bus,
    emitter: AuditEmitter,
    shutdown: CancellationToken,
    consuming: tokio::task::JoinHandle<()>,
}

async fn pipeline(db: &DatabaseConnection) -> Pipeline {
    let nats = NatsServer::start().await;
    let js = jetstream::new(scifer_events::connect(&nats.url()).await.unwrap());
    let bus = Bus::new(&unique_prefix()).unwrap();
    let emitter = AuditEmitter::new(Publisher::new(js.clone()), bus.clone(), "token-vault");
    emitter.ensure_stream().await.unwrap();
    // The gateway's two lines.
    let pull = consumer::durable(&js, &bus).await.unwrap();
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer::run(
        pull,
        db.clone(),
        BatchOptions::default(),
        shutdown.clone(),
    ));
    Pipeline {
        _nats: nats,
        js,
        bus,
        emitter,
        shutdown,
        consuming,
    }
}

async fn wait_for_records(db: &DatabaseConnection, n: u64) {
    wait_until(Duration::from_secs(20), || async {
        audit_record::Entity::find().count(db).await.unwrap() >= n
    })
    .await
    .unwrap_or_else(|e| panic!("{n} records not stored: {e}"));
}

#[tokio::test]
async fn emitted_events_are_stored_in_a_verifiable_chain_with_their_trace_id() {
    // A tracer, so that spans carry OpenTelemetry trace ids as they do in the services.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("audit-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = store().await;
    let p = pipeline(&s.db).await;
    let w = ws("ws1");

    let span = tracing::info_span!("request");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    assert_eq!(trace_id.len(), 32);
    let first = p
        .emitter
        .emit(
            Audit::new(
                &w,
                Actor::service("token-vault"),
                action::TOKEN_USED,
                Outcome::Success,
            )
            .target("channel", "ch-1")
            .detail("send message"),
        )
        .instrument(span)
        .await
        .unwrap();
    assert_eq!(first.trace_id(), trace_id);
    p.emitter
        .emit(Audit::new(
            &w,
            Actor::user("u1"),
            action::CHANNEL_DISCONNECTED,
            Outcome::Denied,
        ))
        .await
        .unwrap();
    p.emitter
        .emit(Audit::new(
            &ws("ws2"),
            Actor::system(),
            action::DATA_DELETION_COMPLETED,
            Outcome::Success,
        ))
        .await
        .unwrap();
    // A republished event (same Nats-Msg-Id) is collapsed by the bus; past the bus's window the
    // store's unique event id would drop it.
    Publisher::new(p.js.clone())
        .publish(p.bus.audit_event("ws1"), first.event_id(), &first.to_event())
        .await
        .unwrap();

    wait_for_records(&s.db, 3).await;
    let rows = audit_record::Entity::find()
        .order_by_asc(audit_record::Column::Id)
        .all(&s.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let row = rows.iter().find(|r| r.event_id == first.event_id()).unwrap();
    assert_eq!(row.workspace_id, "ws1");
    assert_eq!(row.sequence, 1);
    assert_eq!(row.trace_id, trace_id);
    assert_eq!(row.action, "token.used");
    assert_eq!(
        (row.actor_kind.as_str(), row.actor_id.as_str()),
        ("service", "token-vault")
    );
    assert_eq!(
        (row.target_kind.as_str(), row.target_id.as_str()),
        ("channel", "ch-1")
    );
    assert_eq!(row.service, "token-vault");
    assert_eq!(row.at_ms, first.at_ms());
    // Outside a span there is no trace id.
    let denied = rows.iter().find(|r| r.outcome == "denied").unwrap();
    assert_eq!(denied.trace_id, "");

    assert_eq!(store::verify_workspace(&s.db, &w).await.unwrap().records, 2);
    assert_eq!(
        store::verify_workspace(&s.db, &ws("ws2")).await.unwrap().records,
        1
    );

    p.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), p.consuming)
        .await
        .expect("the consumer stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn malformed_events_are_rejected_and_do_not_block_the_others() {
    let s = store().await;
    let p = pipeline(&s.db).await;
    let publisher = Publisher::new(p.js.clone());

    // Not protobuf at all.
    publisher
        .send_bytes(
            p.bus.audit_event("ws1"),
            "bad-1",
            "scifer.events.v1.AuditEvent",
            b"\xff\xff\xff".to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    // Well-formed protobuf, bad content (no outcome).
    let mut no_outcome = event("ws1", action::AUTH_LOGIN, "u1", 1_700_000_000_000);
    no_outcome.outcome = 0;
    publisher
        .publish(p.bus.audit_event("ws1"), &no_outcome.event_id, &no_outcome)
        .await
        .unwrap();
    // Published on another workspace's subject.
    let misfiled = event("ws1", action::AUTH_LOGIN, "u1", 1_700_000_000_000);
    publisher
        .publish(p.bus.audit_event("ws2"), &misfiled.event_id, &misfiled)
        .await
        .unwrap();
    // And a good one.
    let good = event("ws1", action::AUTH_LOGIN, "u1", 1_700_000_000_000);
    assert!(!good.encode_to_vec().is_empty());
    publisher
        .publish(p.bus.audit_event("ws1"), &good.event_id, &good)
        .await
        .unwrap();

    wait_for_records(&s.db, 1).await;
    // Everything was settled (the bad ones terminated, not left for redelivery).
    let stream_name = p.bus.stream_name(scifer_events::StreamKind::Audit);
    let settled = wait_until(Duration::from_secs(10), || {
        let js = p.js.clone();
        let stream_name = stream_name.clone();
        async move {
            let stream = js.get_stream(&stream_name).await.unwrap();
            let mut c: jetstream::consumer::PullConsumer =
                stream.get_consumer(consumer::DURABLE_NAME).await.unwrap();
            let info = c.info().await.unwrap();
            info.num_pending == 0 && info.num_ack_pending == 0
        }
    })
    .await;
    assert!(settled.is_ok(), "messages left unacknowledged");
    let rows = audit_record::Entity::find().all(&s.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_id, good.event_id);

    p.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), p.consuming).await;
}
