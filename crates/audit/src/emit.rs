//! Publishing audit events from any service:
//!
//! ```ignore
//! let audit = AuditEmitter::new(publisher, bus, "gateway");
//! audit.ensure_stream().await?; // at startup
//! audit
//!     .emit(Audit::new(&workspace, Actor::user(&user_id), action::MEMBER_ROLE_CHANGED, Outcome::Success)
//!         .target("member", &member_id)
//!         .detail("viewer -> admin"))
//!     .await?;
//! ```
//!
//! Never pass a secret (password, session or invitation token, access token) in any field.

use opentelemetry::trace::TraceContextExt;
use scifer_events::{Bus, EnsureStreamError, PublishError, Publisher, StreamKind};
use scifer_ids::WorkspaceId;
use scifer_proto::events::v1 as proto;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::entry::{self, Actor, AuditEntry, InvalidEntry, Outcome, Target};

/// An action to record. The emitter adds the event id, the time, the trace id and the service.
#[derive(Debug, Clone)]
pub struct Audit {
    workspace: WorkspaceId,
    actor: Actor,
    action: String,
    target: Target,
    outcome: Outcome,
    detail: String,
}

impl Audit {
    /// `action` is one of [`crate::action`]'s names (or another dotted lowercase name).
    pub fn new(workspace: &WorkspaceId, actor: Actor, action: &str, outcome: Outcome) -> Self {
        Self {
            workspace: workspace.clone(),
            actor,
            action: action.to_string(),
            target: Target::default(),
            outcome,
            detail: String::new(),
        }
    }

    pub fn target(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        self.target = Target::new(kind, id);
        self
    }

    /// A short note for readers of the log; longer than [`crate::MAX_DETAIL_LEN`] bytes is cut.
    /// No secrets.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// A programming error in the caller (a malformed action name, an over-long id).
    #[error("invalid audit event: {0}")]
    Invalid(#[from] InvalidEntry),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Publishes `AuditEvent`s on `<prefix>.audit.<workspace>` with `Nats-Msg-Id` = event id, and
/// waits for the stream to store each one.
#[derive(Clone)]
pub struct AuditEmitter {
    publisher: Publisher,
    bus: Bus,
    service: String,
}

impl AuditEmitter {
    /// `service` names the emitting service in every event (e.g. "gateway", "token-vault").
    pub fn new(publisher: Publisher, bus: Bus, service: impl Into<String>) -> Self {
        Self {
            publisher,
            bus,
            service: service.into(),
        }
    }

    /// Creates the audit stream if it does not exist yet (publishing to a missing stream fails).
    pub async fn ensure_stream(&self) -> Result<(), EnsureStreamError> {
        self.bus
            .ensure_default_stream(self.publisher.context(), StreamKind::Audit)
            .await
            .map(|_| ())
    }

    /// Stamps `audit` with a new event id (UUID v7), the current time, the current span's trace id
    /// and this service, and checks it, without publishing.
    pub fn prepare(&self, audit: Audit) -> Result<AuditEntry, InvalidEntry> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        AuditEntry::try_from(proto::AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            workspace_id: audit.workspace.to_string(),
            actor: Some(proto::Actor {
                kind: audit.actor.kind.to_proto() as i32,
                id: audit.actor.id,
            }),
            action: audit.action,
            target: Some(proto::Target {
                kind: audit.target.kind,
                id: audit.target.id,
            }),
            at: Some(entry::timestamp(now_ms)),
            trace_id: current_trace_id(),
            outcome: audit.outcome.to_proto() as i32,
            detail: entry::shorten_detail(audit.detail),
            service: self.service.clone(),
        })
    }

    /// Publishes one audit event and waits for the bus to store it; returns what was published.
    pub async fn emit(&self, audit: Audit) -> Result<AuditEntry, EmitError> {
        let entry = self.prepare(audit)?;
        let subject = self.bus.audit_event(entry.workspace_id().as_str());
        self.publisher
            .publish(subject, entry.event_id(), &entry.to_event())
            .await?;
        Ok(entry)
    }
}

/// The W3C trace id of the current span (32 lowercase hex digits), or empty outside a trace.
pub fn current_trace_id() -> String {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    }
}
