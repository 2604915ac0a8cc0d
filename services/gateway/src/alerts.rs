//! Needs-reauth alerts: the durable consumer `gateway-channel-alerts` reads token-vault's
//! `ChannelEvent`s for channels that need reconnecting and emails every admin and owner of the
//! channel's workspace once per event, with the reason and a link to reconnect.
//!
//! Each member's email is recorded in `channel_alerts` after it is sent, and members already
//! recorded for an event are skipped, so a redelivered or republished event mails nobody twice (a
//! crash between sending and recording can send one again: at least once, not at most once). A
//! failed send is retried by redelivery up to [`MAX_DELIVERIES`] times, then recorded as failed
//! with an error log and acknowledged, so a broken SMTP relay costs alerts, never the consumer.

use std::{collections::HashSet, sync::Arc, time::Duration};

use scifer_events::{
    Batch, BatchOptions, Bus, Delivered, EnsureStreamError, Outcome, StreamKind,
    async_nats::jetstream::{
        self, AckKind,
        consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    },
};
use scifer_ids::WorkspaceId;
use scifer_plumbing::CancellationToken;
use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState};
use sea_orm::{DatabaseConnection, DbErr};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    clock::Clock,
    domain::{AppUrl, Email, ReauthReason, display_name, kind_label},
    mail::{ChannelAlertEmail, Mailer},
    store::{self, entity},
};

/// The durable consumer's name.
pub const DURABLE_NAME: &str = "gateway-channel-alerts";
/// How long the server waits for an acknowledgement; every email sent extends it.
const ACK_WAIT: Duration = Duration::from_secs(60);
/// How long an event waits before redelivery after the database failed.
const DB_RETRY_DELAY: Duration = Duration::from_secs(2);
/// How long an event waits before redelivery after an email could not be sent.
const MAIL_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Deliveries of one event before emails that still fail are given up on.
pub const MAX_DELIVERIES: i64 = 3;
/// Alerts are rare and each may send several emails: small batches keep the events waiting behind
/// one within their ack wait.
const BATCH: BatchOptions = BatchOptions {
    max_messages: 8,
    linger: Duration::ZERO,
};

const SENT: &str = "sent";
const FAILED: &str = "failed";

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Stream(#[from] EnsureStreamError),
    #[error("cannot create the channel alerts consumer: {0}")]
    Consumer(String),
}

/// Creates (if needed) the CHANNELS stream and the durable consumer of needs-reauth events. A new
/// consumer starts at new events: the stream keeps channel events for good, and the first start
/// must not mail admins about every channel that ever needed reconnecting.
pub async fn durable(js: &jetstream::Context, bus: &Bus) -> Result<PullConsumer, ConsumerError> {
    let stream = bus.ensure_default_stream(js, StreamKind::Channels).await?;
    let config = pull::Config {
        durable_name: Some(DURABLE_NAME.to_string()),
        filter_subject: bus.channel_event(ChannelState::NeedsReauth),
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        deliver_policy: DeliverPolicy::New,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(DURABLE_NAME, config)
        .await
        .map_err(|e| ConsumerError::Consumer(e.to_string()))
}

/// The batch handler; `handle_batch` is the code path of both [`ChannelAlerts::run`] and tests.
#[derive(Clone)]
pub struct ChannelAlerts {
    db: DatabaseConnection,
    mailer: Arc<dyn Mailer>,
    app_url: AppUrl,
    clock: Clock,
}

/// What became of one event's emails.
#[derive(Debug)]
enum Sent {
    /// Every admin and owner has been mailed (now or before).
    All,
    /// Some emails failed; the rest were sent and recorded.
    Failed(Vec<entity::user::Model>),
}

impl ChannelAlerts {
    pub fn new(db: DatabaseConnection, mailer: Arc<dyn Mailer>, app_url: AppUrl, clock: Clock) -> Self {
        Self {
            db,
            mailer,
            app_url,
            clock,
        }
    }

    /// Consumes until `shutdown`; the batch in hand is finished and acknowledged first.
    pub async fn run(self, consumer: PullConsumer, shutdown: CancellationToken) {
        scifer_events::consume_batches(consumer, BATCH, shutdown, |batch| {
            let this = self.clone();
            async move { this.handle_batch(batch).await }
        })
        .await;
    }

    /// One outcome per message, in order.
    pub async fn handle_batch(&self, msgs: Batch) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(msgs.len());
        for msg in &msgs {
            let span = tracing::info_span!("gateway.channel_alert", subject = %msg.subject);
            let _ = span.set_parent(scifer_events::parent_context(msg.headers.as_ref()));
            outcomes.push(self.handle_one(msg).instrument(span).await);
        }
        outcomes
    }

    async fn handle_one(&self, msg: &Delivered) -> Outcome {
        let event = match scifer_events::decode::<ChannelEvent>(msg) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "undecodable channel event rejected");
                return Outcome::Reject;
            }
        };
        // The subject says needs_reauth; the payload decides.
        if event.state() != ChannelState::NeedsReauth {
            return Outcome::Ack;
        }
        let workspace = match WorkspaceId::parse(&event.workspace_id) {
            Ok(ws) if !event.event_id.is_empty() && !event.channel_id.is_empty() => ws,
            _ => {
                tracing::error!(
                    event_id = %event.event_id,
                    channel_id = %event.channel_id,
                    "channel event without a valid workspace, event or channel id rejected"
                );
                return Outcome::Reject;
            }
        };
        let attempt = msg.info().map(|info| info.delivered).unwrap_or(1);
        match self.alert(msg, &event, &workspace).await {
            Ok(Sent::All) => Outcome::Ack,
            Ok(Sent::Failed(failed)) if attempt < MAX_DELIVERIES => {
                tracing::warn!(
                    event_id = %event.event_id,
                    failed = failed.len(),
                    attempt,
                    "channel alert emails failed; retrying"
                );
                Outcome::Retry(MAIL_RETRY_DELAY)
            }
            Ok(Sent::Failed(failed)) => match self.give_up(&event, &workspace, &failed).await {
                Ok(()) => Outcome::Ack,
                Err(e) => {
                    tracing::error!(error = %e, event_id = %event.event_id, "cannot record failed channel alerts");
                    Outcome::Retry(DB_RETRY_DELAY)
                }
            },
            Err(e) => {
                tracing::error!(error = %e, event_id = %event.event_id, "channel alert failed on the store; will be redelivered");
                Outcome::Retry(DB_RETRY_DELAY)
            }
        }
    }

    /// Mails every admin and owner not yet handled for this event, recording each sent email.
    async fn alert(
        &self,
        msg: &Delivered,
        event: &ChannelEvent,
        workspace: &WorkspaceId,
    ) -> Result<Sent, DbErr> {
        let ws = workspace.as_str();
        let Some(workspace_row) = store::find_workspace(&self.db, ws).await? else {
            tracing::warn!(workspace = %workspace, event_id = %event.event_id, "channel alert for an unknown workspace ignored");
            return Ok(Sent::All);
        };
        let done: HashSet<String> = store::alerted_users(&self.db, ws, &event.event_id)
            .await?
            .into_iter()
            .collect();
        let pending: Vec<_> = store::admins_of(&self.db, ws)
            .await?
            .into_iter()
            .filter(|user| !done.contains(&user.id))
            .collect();
        if pending.is_empty() {
            return Ok(Sent::All);
        }
        let kind = ChannelKind::try_from(event.kind).unwrap_or(ChannelKind::Unspecified);
        let reason = ReauthReason::parse(&event.state_reason);
        let link = self.app_url.reconnect_link(workspace, &event.channel_id);
        let mut failed = Vec::new();
        for user in pending {
            // Each email may take the SMTP timeout: keep the event ours meanwhile.
            if let Err(e) = msg.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "cannot extend the ack wait of a channel event");
            }
            let Ok(to) = Email::parse(&user.email) else {
                tracing::error!(user_id = %user.id, "an admin's stored email is not an address");
                failed.push(user);
                continue;
            };
            let email = ChannelAlertEmail {
                event_id: event.event_id.clone(),
                to,
                workspace_name: workspace_row.name.clone(),
                kind: kind_label(kind),
                channel_name: display_name(&event.display_name, &event.account_id),
                reason: reason.clone(),
                reconnect_link: link.clone(),
            };
            match self.mailer.send_channel_alert(&email).await {
                Ok(()) => {
                    self.record(event, workspace, &user.id, SENT).await?;
                    tracing::info!(event_id = %event.event_id, user_id = %user.id, "channel alert sent");
                }
                Err(e) => {
                    tracing::warn!(
                        error = %scifer_plumbing::error_chain(&e),
                        event_id = %event.event_id,
                        user_id = %user.id,
                        "a channel alert email could not be sent"
                    );
                    failed.push(user);
                }
            }
        }
        Ok(if failed.is_empty() {
            Sent::All
        } else {
            Sent::Failed(failed)
        })
    }

    /// The last delivery: records the emails that still failed so the event is done.
    async fn give_up(
        &self,
        event: &ChannelEvent,
        workspace: &WorkspaceId,
        failed: &[entity::user::Model],
    ) -> Result<(), DbErr> {
        for user in failed {
            self.record(event, workspace, &user.id, FAILED).await?;
        }
        tracing::error!(
            event_id = %event.event_id,
            channel_id = %event.channel_id,
            workspace = %workspace,
            users = ?failed.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            "channel alert emails could not be sent after {MAX_DELIVERIES} deliveries; given up"
        );
        Ok(())
    }

    async fn record(
        &self,
        event: &ChannelEvent,
        workspace: &WorkspaceId,
        user_id: &str,
        outcome: &str,
    ) -> Result<(), DbErr> {
        store::record_alert(
            &self.db,
            entity::channel_alert::Model {
                workspace_id: workspace.as_str().to_string(),
                event_id: event.event_id.clone(),
                user_id: user_id.to_string(),
                channel_id: event.channel_id.clone(),
                outcome: outcome.to_string(),
                at_ms: self.clock.now_ms(),
            },
        )
        .await
    }
}
