//! An audit event as the crate works with it: parsed once from the protobuf `AuditEvent` (on the
//! emitting side before it is published, on the storing side when it arrives), so everything after
//! that point holds a well-formed entry.

use scifer_ids::WorkspaceId;
use scifer_proto::events::v1 as proto;

use crate::action;

/// Longest accepted `detail`, in bytes. The emitter shortens longer details instead of failing.
pub const MAX_DETAIL_LEN: usize = 2048;
/// Longest accepted actor id, target kind, target id or service name, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// Who performed an action. The names from [`ActorKind::as_str`] are what the store keeps and
/// hashes, so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    AutomationRule,
    Ai,
    System,
    Service,
}

impl ActorKind {
    pub const ALL: [ActorKind; 5] = [
        ActorKind::User,
        ActorKind::AutomationRule,
        ActorKind::Ai,
        ActorKind::System,
        ActorKind::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::AutomationRule => "automation_rule",
            ActorKind::Ai => "ai",
            ActorKind::System => "system",
            ActorKind::Service => "service",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn from_proto(value: i32) -> Option<Self> {
        match proto::ActorKind::try_from(value).ok()? {
            proto::ActorKind::Unspecified => None,
            proto::ActorKind::User => Some(ActorKind::User),
            proto::ActorKind::AutomationRule => Some(ActorKind::AutomationRule),
            proto::ActorKind::Ai => Some(ActorKind::Ai),
            proto::ActorKind::System => Some(ActorKind::System),
            proto::ActorKind::Service => Some(ActorKind::Service),
        }
    }

    pub(crate) fn to_proto(self) -> proto::ActorKind {
        match self {
            ActorKind::User => proto::ActorKind::User,
            ActorKind::AutomationRule => proto::ActorKind::AutomationRule,
            ActorKind::Ai => proto::ActorKind::Ai,
            ActorKind::System => proto::ActorKind::System,
            ActorKind::Service => proto::ActorKind::Service,
        }
    }
}

/// How an action ended. As with [`ActorKind`], the names are stored and hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    fn from_proto(value: i32) -> Option<Self> {
        match proto::audit_event::Outcome::try_from(value).ok()? {
            proto::audit_event::Outcome::Unspecified => None,
            proto::audit_event::Outcome::Success => Some(Outcome::Success),
            proto::audit_event::Outcome::Failure => Some(Outcome::Failure),
            proto::audit_event::Outcome::Denied => Some(Outcome::Denied),
        }
    }

    pub(crate) fn to_proto(self) -> proto::audit_event::Outcome {
        match self {
            Outcome::Success => proto::audit_event::Outcome::Success,
            Outcome::Failure => proto::audit_event::Outcome::Failure,
            Outcome::Denied => proto::audit_event::Outcome::Denied,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::User,
            id: id.into(),
        }
    }
    pub fn automation_rule(id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::AutomationRule,
            id: id.into(),
        }
    }
    pub fn ai(id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Ai,
            id: id.into(),
        }
    }
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: String::new(),
        }
    }
    pub fn service(name: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Service,
            id: name.into(),
        }
    }
}

/// What an action was done to; both parts empty when there is no object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

impl Target {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
        }
    }
}

/// Why an `AuditEvent` was refused. Refused events are never stored (the consumer terminates them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntry {
    #[error("event_id must be a UUID")]
    EventId,
    #[error("workspace_id: {0}")]
    Workspace(#[from] scifer_ids::InvalidWorkspaceId),
    #[error("actor kind is missing or unknown")]
    ActorKind,
    #[error("action {0:?} is not a dotted lowercase action name")]
    Action(String),
    #[error("the time is missing, before 1970 or out of range")]
    At,
    #[error("trace_id must be empty or 32 lowercase hex digits")]
    TraceId,
    #[error("outcome is missing or unknown")]
    Outcome,
    #[error("service is required")]
    Service,
    #[error("{0} is longer than allowed")]
    TooLong(&'static str),
}

/// One audit event, well-formed. Built only by parsing an `AuditEvent` ([`TryFrom`]); the emitter
/// does that too, so a bad event fails where it is made rather than in the gateway.
///
/// No field may hold a secret (password, session or invitation token, access token): name the
/// thing a secret belongs to instead. Records are kept long, listed to admins and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    event_id: String,
    workspace_id: WorkspaceId,
    actor: Actor,
    action: String,
    target: Target,
    at_ms: i64,
    trace_id: String,
    outcome: Outcome,
    detail: String,
    service: String,
}

impl AuditEntry {
    pub fn event_id(&self) -> &str {
        &self.event_id
    }
    pub fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    pub fn action(&self) -> &str {
        &self.action
    }
    pub fn target(&self) -> &Target {
        &self.target
    }
    /// Unix milliseconds.
    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
    pub fn detail(&self) -> &str {
        &self.detail
    }
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The protobuf form, as published on the bus.
    pub fn to_event(&self) -> proto::AuditEvent {
        proto::AuditEvent {
            event_id: self.event_id.clone(),
            workspace_id: self.workspace_id.to_string(),
            actor: Some(proto::Actor {
                kind: self.actor.kind.to_proto() as i32,
                id: self.actor.id.clone(),
            }),
            action: self.action.clone(),
            target: Some(proto::Target {
                kind: self.target.kind.clone(),
                id: self.target.id.clone(),
            }),
            at: Some(timestamp(self.at_ms)),
            trace_id: self.trace_id.clone(),
            outcome: self.outcome.to_proto() as i32,
            detail: self.detail.clone(),
            service: self.service.clone(),
        }
    }
}

impl TryFrom<proto::AuditEvent> for AuditEntry {
    type Error = InvalidEntry;

    fn try_from(e: proto::AuditEvent) -> Result<Self, InvalidEntry> {
        if uuid::Uuid::parse_str(&e.event_id).is_err() {
            return Err(InvalidEntry::EventId);
        }
        let workspace_id = WorkspaceId::parse(&e.workspace_id)?;
        let actor = e.actor.unwrap_or_default();
        let actor = Actor {
            kind: ActorKind::from_proto(actor.kind).ok_or(InvalidEntry::ActorKind)?,
            id: limited(actor.id, MAX_ID_LEN, "actor id")?,
        };
        if !action::is_well_formed(&e.action) {
            return Err(InvalidEntry::Action(e.action));
        }
        let target = e.target.unwrap_or_default();
        let target = Target {
            kind: limited(target.kind, MAX_ID_LEN, "target kind")?,
            id: limited(target.id, MAX_ID_LEN, "target id")?,
        };
        let at_ms = e.at.as_ref().and_then(millis).ok_or(InvalidEntry::At)?;
        let trace_ok = e.trace_id.is_empty()
            || (e.trace_id.len() == 32
                && e.trace_id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        if !trace_ok {
            return Err(InvalidEntry::TraceId);
        }
        let outcome = Outcome::from_proto(e.outcome).ok_or(InvalidEntry::Outcome)?;
        if e.service.is_empty() {
            return Err(InvalidEntry::Service);
        }
        Ok(Self {
            event_id: e.event_id,
            workspace_id,
            actor,
            action: e.action,
            target,
            at_ms,
            trace_id: e.trace_id,
            outcome,
            detail: limited(e.detail, MAX_DETAIL_LEN, "detail")?,
            service: limited(e.service, MAX_ID_LEN, "service")?,
        })
    }
}

fn limited(value: String, max: usize, what: &'static str) -> Result<String, InvalidEntry> {
    if value.len() > max {
        Err(InvalidEntry::TooLong(what))
    } else {
        Ok(value)
    }
}

/// Unix milliseconds of a timestamp; None before 1970, out of range or not normalised.
fn millis(t: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    let ms = t
        .seconds
        .checked_mul(1000)?
        .checked_add(i64::from(t.nanos / 1_000_000))?;
    (ms >= 0).then_some(ms)
}

pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        // Below 1000 * 1_000_000, so it fits.
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// `detail` cut to [`MAX_DETAIL_LEN`] bytes at a character boundary, marked with an ellipsis.
pub(crate) fn shorten_detail(mut detail: String) -> String {
    if detail.len() <= MAX_DETAIL_LEN {
        return detail;
    }
    let mut end = MAX_DETAIL_LEN - '…'.len_utf8();
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail.truncate(end);
    detail.push('…');
    detail
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn event(workspace: &str, action: &str) -> proto::AuditEvent {
        proto::AuditEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            workspace_id: workspace.into(),
            actor: Some(proto::Actor {
                kind: proto::ActorKind::User as i32,
                id: "user-1".into(),
            }),
            action: action.into(),
            target: Some(proto::Target {
                kind: "member".into(),
                id: "user-2".into(),
            }),
            at: Some(timestamp(1_700_000_000_123)),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            outcome: proto::audit_event::Outcome::Success as i32,
            detail: "viewer -> admin".into(),
            service: "gateway".into(),
        }
    }

    #[test]
    fn a_good_event_round_trips() {
        let e = event("ws1", action::MEMBER_ROLE_CHANGED);
        let entry = AuditEntry::try_from(e.clone()).unwrap();
        assert_eq!(entry.at_ms(), 1_700_000_000_123);
        assert_eq!(entry.actor(), &Actor::user("user-1"));
        assert_eq!(entry.outcome(), Outcome::Success);
        assert_eq!(entry.to_event(), e);
    }

    #[test]
    fn malformed_events_are_refused() {
        type Case = (fn(&mut proto::AuditEvent), InvalidEntry);
        let cases: Vec<Case> = vec![
            (|e| e.event_id = "not-a-uuid".into(), InvalidEntry::EventId),
            (|e| e.actor = None, InvalidEntry::ActorKind),
            (
                |e| e.action = "Login".into(),
                InvalidEntry::Action("Login".into()),
            ),
            (|e| e.at = None, InvalidEntry::At),
            (
                |e| {
                    e.at = Some(prost_types::Timestamp {
                        seconds: -5,
                        nanos: 0,
                    })
                },
                InvalidEntry::At,
            ),
            (|e| e.trace_id = "XYZ".into(), InvalidEntry::TraceId),
            (|e| e.outcome = 0, InvalidEntry::Outcome),
            (|e| e.outcome = 99, InvalidEntry::Outcome),
            (|e| e.service.clear(), InvalidEntry::Service),
            (
                |e| e.detail = "x".repeat(MAX_DETAIL_LEN + 1),
                InvalidEntry::TooLong("detail"),
            ),
        ];
        for (spoil, expected) in cases {
            let mut e = event("ws1", action::AUTH_LOGIN);
            spoil(&mut e);
            assert_eq!(AuditEntry::try_from(e), Err(expected));
        }
        let mut e = event("ws1", action::AUTH_LOGIN);
        e.workspace_id = "a.b".into();
        assert!(matches!(AuditEntry::try_from(e), Err(InvalidEntry::Workspace(_))));
    }

    #[test]
    fn names_parse_back() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn long_details_are_shortened_at_a_character_boundary() {
        let long = "é".repeat(MAX_DETAIL_LEN);
        let short = shorten_detail(long);
        assert!(short.len() <= MAX_DETAIL_LEN);
        assert!(short.ends_with('…'));
        assert_eq!(shorten_detail("ok".into()), "ok");
    }
}
