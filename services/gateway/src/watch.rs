//! Live inbox events for one watcher: a core NATS subscription on the workspace's inbox subjects,
//! forwarded into a bounded channel that the gRPC response streams from.
//!
//! Overflow policy: when a watcher's buffer is full (it reads slower than its workspace produces
//! events), its stream is ended with RESOURCE_EXHAUSTED instead of silently dropping events. A
//! client that missed events would show a wrong inbox without knowing; one that gets the error
//! knows to reload and watch again. The subscription is dropped at that moment, so a stuck client
//! holds at most the buffer plus the error.
//!
//! Revocation: the auth layer checks the caller once, when the call starts, but a watch can stay
//! open for hours. The forwarder re-runs a [`Recheck`] (session still live, still a member) every
//! `WATCH_RECHECK_SECS`; when it fails, the subscription is dropped at once and the stream ends
//! with the check's error (UNAUTHENTICATED or NOT_FOUND), so nothing published afterwards reaches
//! that watcher. A failure to run the check (database down) ends the stream too: fail closed.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::Duration;

use futures::{Stream, StreamExt, future::BoxFuture};
use prost::Message as _;
use scifer_events::Bus;
use scifer_plumbing::CancellationToken;
use scifer_proto::events::v1::InboxEvent;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use scifer_ids::WorkspaceId;

use crate::domain::WatchScope;
use crate::error::GatewayError;

/// Events buffered per watcher before it counts as too slow. A browser tab that is merely busy
/// for a moment stays far below it; a busy workspace produces well under this per second.
pub const WATCH_BUFFER: usize = 256;

/// How long setting up a subscription may take before the call fails with UNAVAILABLE (the bus is
/// down or reconnecting).
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

pub type EventStream = ReceiverStream<Result<InboxEvent, GatewayError>>;

/// Whether the watcher may still watch: Ok, or the error its stream ends with.
pub type Check = Box<dyn FnMut() -> BoxFuture<'static, Result<(), GatewayError>> + Send>;

/// A [`Check`] and how often to run it while the stream is open.
pub struct Recheck {
    pub every: Duration,
    pub check: Check,
}

/// Opens watch streams; ends all of them when `shutdown` is cancelled, so graceful shutdown does not
/// wait on streams that would otherwise never end.
#[derive(Clone)]
pub struct Watcher {
    nats: async_nats::Client,
    bus: Bus,
    shutdown: CancellationToken,
    active: ActiveWatches,
    recheck_every: Duration,
}

/// How many watch streams are open.
#[derive(Clone, Default, Debug)]
pub struct ActiveWatches(Arc<AtomicUsize>);

impl ActiveWatches {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn enter(&self) -> ActiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.clone())
    }
}

/// Decrements the count however the forwarding task ends.
struct ActiveGuard(ActiveWatches);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watcher {
    pub fn new(
        nats: async_nats::Client,
        bus: Bus,
        shutdown: CancellationToken,
        active: ActiveWatches,
        recheck_every: Duration,
    ) -> Self {
        Self {
            nats,
            bus,
            shutdown,
            active,
            recheck_every,
        }
    }

    /// Subscribes to the workspace's inbox events and its live-only events (typing). Returns once
    /// the server has registered both subscriptions, so every event published after the caller
    /// sees the stream open is delivered; `scope` then picks this watcher's events. `check` runs
    /// every `WATCH_RECHECK_SECS` while the stream is open; its first failure ends it.
    pub async fn watch(
        &self,
        workspace: &WorkspaceId,
        scope: WatchScope,
        check: Check,
    ) -> Result<EventStream, GatewayError> {
        if self.shutdown.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }
        let stored = self.bus.inbox_workspace_filter(workspace.as_str());
        let live = self.bus.live_workspace_filter(workspace.as_str());
        let subscribe = async {
            let bus_error = |e: async_nats::SubscribeError| GatewayError::Bus(e.into());
            let stored = self.nats.subscribe(stored).await.map_err(bus_error)?;
            let live = self.nats.subscribe(live).await.map_err(bus_error)?;
            // SUB is only queued by `subscribe`; the PING/PONG of a flush proves the server has
            // processed it, which is what "live from the moment of the call" needs.
            self.nats.flush().await.map_err(|e| GatewayError::Bus(e.into()))?;
            Ok::<_, GatewayError>(futures::stream::select(stored, live))
        };
        let subscriber = tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe)
            .await
            .map_err(|_| GatewayError::BusTimeout(SUBSCRIBE_TIMEOUT))??;

        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let guard = self.active.enter();
        let span = tracing::info_span!("watch_inbox", workspace = %workspace);
        tokio::spawn(
            forward(
                subscriber,
                workspace.clone(),
                scope,
                tx,
                self.shutdown.clone(),
                Recheck {
                    every: self.recheck_every,
                    check,
                },
                guard,
            )
            .instrument(span),
        );
        Ok(ReceiverStream::new(rx))
    }
}

impl Watcher {
    /// Publishes a live-only event (typing) to the workspace's watchers of this moment: core NATS,
    /// so it is never stored and reaches nobody when nobody watches, which is what it is for.
    pub async fn publish_live(&self, kind: &str, event: &InboxEvent) -> Result<(), GatewayError> {
        let subject = self.bus.live_event(&event.workspace_id, kind);
        self.nats
            .publish(subject, event.encode_to_vec().into())
            .await
            .map_err(|e| GatewayError::Bus(e.into()))
    }
}

/// Moves events from `messages` to `tx` until the watcher goes away (`tx` closed), the gateway shuts
/// down, the subscription ends, the watcher falls behind or `recheck` fails. Dropping `messages`
/// unsubscribes.
async fn forward<S>(
    mut messages: S,
    workspace: WorkspaceId,
    scope: WatchScope,
    tx: mpsc::Sender<Result<InboxEvent, GatewayError>>,
    shutdown: CancellationToken,
    mut recheck: Recheck,
    _active: ActiveGuard,
) where
    S: Stream<Item = async_nats::Message> + Unpin,
{
    tracing::debug!("watch stream opened");
    // The first check is one period after the auth layer's; a slow check delays the next one
    // rather than queueing ticks behind it.
    let every = recheck.every.max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            () = tx.closed() => {
                tracing::debug!("watcher went away");
                return;
            }
            () = shutdown.cancelled() => {
                // Best effort: a watcher whose buffer is full still sees its stream end.
                let _ = tx.try_send(Err(GatewayError::ShuttingDown));
                return;
            }
            _ = ticks.tick() => {
                let outcome = tokio::select! {
                    outcome = (recheck.check)() => outcome,
                    () = tx.closed() => return,
                    () = shutdown.cancelled() => {
                        let _ = tx.try_send(Err(GatewayError::ShuttingDown));
                        return;
                    }
                };
                if let Err(error) = outcome {
                    // Unsubscribe before anything else: nothing published from now on is read.
                    drop(messages);
                    tracing::info!(error = %error, "watch ended: the caller may no longer watch");
                    end_with(&tx, error, &shutdown).await;
                    return;
                }
                continue;
            }
            message = messages.next() => message,
        };
        let Some(message) = message else {
            let _ = tx.try_send(Err(GatewayError::BusClosed));
            return;
        };
        let Some(event) = decode(&message, &workspace) else {
            continue;
        };
        if !scope.admits(&event) {
            continue;
        }
        match tx.try_send(Ok(event)) {
            Ok(()) => {}
            Err(TrySendError::Closed(_)) => return,
            Err(TrySendError::Full(_)) => {
                drop(messages);
                end_with(&tx, GatewayError::WatchOverflow(WATCH_BUFFER), &shutdown).await;
                return;
            }
        }
    }
}

/// Sends the error that ends the stream after what is already buffered. Waits for room only while
/// the watcher is still there and the gateway is not stopping; nothing else is buffered meanwhile.
async fn end_with(
    tx: &mpsc::Sender<Result<InboxEvent, GatewayError>>,
    error: GatewayError,
    shutdown: &CancellationToken,
) {
    tokio::select! {
        _ = tx.send(Err(error)) => {}
        () = tx.closed() => {}
        () = shutdown.cancelled() => {}
    }
}

/// The event in `message`, or None (logged) when it cannot be sent to this watcher. The span
/// continues the publisher's trace, so one trace runs from the webhook to the browser.
fn decode(message: &async_nats::Message, workspace: &WorkspaceId) -> Option<InboxEvent> {
    let span = tracing::info_span!("inbox_event", subject = %message.subject);
    let _ = span.set_parent(scifer_events::parent_context(message.headers.as_ref()));
    let _entered = span.enter();
    let event = match InboxEvent::decode(message.payload.as_ref()) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, subject = %message.subject, "skipping an undecodable inbox event");
            return None;
        }
    };
    // The subject already scopes the subscription; this guards tenants against an event that was
    // published under the wrong workspace's subject.
    if event.workspace_id != workspace.as_str() {
        tracing::error!(
            subject = %message.subject,
            event_workspace = %event.workspace_id,
            event_id = %event.event_id,
            "skipping an inbox event whose workspace does not match its subject"
        );
        return None;
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicBool, time::Duration};

    use bytes::Bytes;
    use futures::stream;

    use super::*;

    fn message(workspace: &str, event_id: &str) -> async_nats::Message {
        let event = InboxEvent {
            event_id: event_id.into(),
            workspace_id: workspace.into(),
            ..Default::default()
        };
        raw(Bytes::from(event.encode_to_vec()))
    }

    fn raw(payload: Bytes) -> async_nats::Message {
        async_nats::Message {
            subject: "p.inbox.ws1.message_created".into(),
            reply: None,
            length: payload.len(),
            payload,
            headers: None,
            status: None,
            description: None,
        }
    }

    /// A subscription that records when it is dropped (i.e. unsubscribed).
    struct Tracked<S> {
        inner: S,
        dropped: Arc<AtomicBool>,
    }

    impl<S: Stream + Unpin> Stream for Tracked<S> {
        type Item = S::Item;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<S::Item>> {
            self.inner.poll_next_unpin(cx)
        }
    }

    impl<S> Drop for Tracked<S> {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    fn ws() -> WorkspaceId {
        WorkspaceId::parse("ws1").unwrap()
    }

    /// A whole-workspace watch by a member who appears in none of the events.
    fn everything() -> WatchScope {
        WatchScope::new("watcher", "")
    }

    /// A check that always passes, rarely run.
    fn allowed() -> Recheck {
        Recheck {
            every: Duration::from_secs(3600),
            check: Box::new(|| Box::pin(async { Ok(()) })),
        }
    }

    /// Messages followed by a subscription that stays open, as a live one does.
    fn open(messages: Vec<async_nats::Message>) -> impl Stream<Item = async_nats::Message> + Unpin {
        stream::iter(messages).chain(stream::pending())
    }

    async fn next(
        rx: &mut mpsc::Receiver<Result<InboxEvent, GatewayError>>,
    ) -> Result<InboxEvent, GatewayError> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no item in time")
            .expect("stream ended")
    }

    #[tokio::test]
    async fn undecodable_and_foreign_events_are_skipped() {
        let (tx, mut rx) = mpsc::channel(8);
        let input = open(vec![
            raw(Bytes::from_static(b"\xff\xff not protobuf")),
            message("ws2", "foreign"),
            message("ws1", "mine"),
        ]);
        let active = ActiveWatches::default();
        tokio::spawn(forward(
            input,
            ws(),
            everything(),
            tx,
            CancellationToken::new(),
            allowed(),
            active.enter(),
        ));
        assert_eq!(next(&mut rx).await.unwrap().event_id, "mine");
    }

    #[tokio::test]
    async fn events_outside_the_watchers_scope_are_skipped() {
        use scifer_proto::events::v1::{ReadMarkerMoved, inbox_event::Kind};
        let read_by = |user: &str, id: &str| {
            let event = InboxEvent {
                event_id: id.into(),
                workspace_id: "ws1".into(),
                kind: Some(Kind::ReadMarkerMoved(ReadMarkerMoved {
                    conversation_id: "c1".into(),
                    user_id: user.into(),
                    ..Default::default()
                })),
                ..Default::default()
            };
            raw(Bytes::from(event.encode_to_vec()))
        };
        let (tx, mut rx) = mpsc::channel(8);
        let input = open(vec![read_by("bob", "bobs"), read_by("alice", "alices")]);
        let active = ActiveWatches::default();
        tokio::spawn(forward(
            input,
            ws(),
            WatchScope::new("alice", ""),
            tx,
            CancellationToken::new(),
            allowed(),
            active.enter(),
        ));
        assert_eq!(next(&mut rx).await.unwrap().event_id, "alices");
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_gets_resource_exhausted_after_its_buffer() {
        let (tx, mut rx) = mpsc::channel(WATCH_BUFFER);
        let unsubscribed = Arc::new(AtomicBool::new(false));
        let input = Tracked {
            inner: open(
                (0..WATCH_BUFFER + 10)
                    .map(|i| message("ws1", &i.to_string()))
                    .collect(),
            ),
            dropped: unsubscribed.clone(),
        };
        let active = ActiveWatches::default();
        let task = tokio::spawn(forward(
            input,
            ws(),
            everything(),
            tx,
            CancellationToken::new(),
            allowed(),
            active.enter(),
        ));
        // Nobody reads until the forwarder has found the buffer full and dropped the subscription;
        // reading earlier would make room and hide the overflow.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !unsubscribed.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert_eq!(rx.len(), WATCH_BUFFER);
        for i in 0..WATCH_BUFFER {
            assert_eq!(next(&mut rx).await.unwrap().event_id, i.to_string());
        }
        assert!(matches!(next(&mut rx).await, Err(GatewayError::WatchOverflow(_))));
        assert!(rx.recv().await.is_none(), "the stream must end after the error");
        task.await.unwrap();
        assert_eq!(active.get(), 0);
    }

    #[tokio::test]
    async fn shutdown_ends_the_stream_with_unavailable() {
        let (tx, mut rx) = mpsc::channel(8);
        let shutdown = CancellationToken::new();
        let active = ActiveWatches::default();
        let task = tokio::spawn(forward(
            open(vec![]),
            ws(),
            everything(),
            tx,
            shutdown.clone(),
            allowed(),
            active.enter(),
        ));
        shutdown.cancel();
        assert!(matches!(next(&mut rx).await, Err(GatewayError::ShuttingDown)));
        assert!(rx.recv().await.is_none());
        task.await.unwrap();
        assert_eq!(active.get(), 0);
    }

    #[tokio::test]
    async fn the_task_ends_when_the_watcher_goes_away() {
        let (tx, rx) = mpsc::channel(8);
        let active = ActiveWatches::default();
        let task = tokio::spawn(forward(
            open(vec![]),
            ws(),
            everything(),
            tx,
            CancellationToken::new(),
            allowed(),
            active.enter(),
        ));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(active.get(), 0);
    }

    #[tokio::test]
    async fn a_failed_recheck_unsubscribes_and_ends_the_stream_with_its_error() {
        let (tx, mut rx) = mpsc::channel(8);
        let unsubscribed = Arc::new(AtomicBool::new(false));
        let (events, input) = mpsc::unbounded_channel();
        let input = Tracked {
            inner: tokio_stream::wrappers::UnboundedReceiverStream::new(input),
            dropped: unsubscribed.clone(),
        };
        let revoked = Arc::new(AtomicBool::new(false));
        let check_revoked = revoked.clone();
        let recheck = Recheck {
            every: Duration::from_millis(10),
            check: Box::new(move || {
                let revoked = check_revoked.load(Ordering::SeqCst);
                Box::pin(async move {
                    if revoked {
                        Err(GatewayError::Unauthenticated)
                    } else {
                        Ok(())
                    }
                })
            }),
        };
        let active = ActiveWatches::default();
        let task = tokio::spawn(forward(
            input,
            ws(),
            everything(),
            tx,
            CancellationToken::new(),
            recheck,
            active.enter(),
        ));
        events.send(message("ws1", "before")).unwrap();
        assert_eq!(next(&mut rx).await.unwrap().event_id, "before");
        revoked.store(true, Ordering::SeqCst);
        assert!(matches!(next(&mut rx).await, Err(GatewayError::Unauthenticated)));
        assert!(unsubscribed.load(Ordering::SeqCst));
        assert!(rx.recv().await.is_none(), "the stream must end after the error");
        task.await.unwrap();
        assert_eq!(active.get(), 0);
    }
}
