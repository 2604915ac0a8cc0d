use std::time::Duration;

use async_nats::jetstream::{self, stream};

use scifer_proto::events::v1::{ChannelKind, ChannelState};

/// Names on the bus for one deployment prefix (`scifer` by default; each test uses its own).
///
/// | stream           | subjects                                        | written by     |
/// |------------------|-------------------------------------------------|----------------|
/// | `<P>_INGEST`     | `<p>.ingest.raw.<channel>`, `<p>.ingest.quarantine` | webhook-ingest (the raw ingest log) |
/// | `<P>_META`       | `<p>.meta.<channel>.<kind>`, `<p>.meta.unhandled` | webhook-ingest (one event per item) |
/// | `<P>_CHANNELS`   | `<p>.channel.<state>`                           | token-vault    |
/// | `<P>_INBOX`      | `<p>.inbox.<workspace>.<kind>`                  | inbox          |
/// | `<P>_AUDIT`      | `<p>.audit.<workspace>`                         | any service (audit events) |
/// | (none: live only) | `<p>.live.<workspace>.<kind>`                  | gateway (typing) |
#[derive(Debug, Clone)]
pub struct Bus {
    prefix: String,
}

/// The streams Scifer uses; [`Bus::stream_config`] gives each one's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Ingest,
    Meta,
    Channels,
    Inbox,
    Audit,
}

impl StreamKind {
    /// How long a stream keeps messages unless a deployment says otherwise. Channel events are kept
    /// for good: a consumer that starts fresh rebuilds its channel table from them.
    pub fn default_retention(self) -> Duration {
        const DAY: u64 = 24 * 3600;
        match self {
            StreamKind::Ingest => Duration::from_secs(30 * DAY),
            StreamKind::Meta | StreamKind::Inbox => Duration::from_secs(7 * DAY),
            StreamKind::Channels => Duration::ZERO,
            // The gateway's audit store is the long-term record; the stream only has to outlast a
            // gateway outage.
            StreamKind::Audit => Duration::from_secs(30 * DAY),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bus prefix {0:?} must be non-empty lowercase letters, digits, '-' or '_'")]
pub struct InvalidPrefix(String);

impl Bus {
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let valid = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self {
                prefix: prefix.to_string(),
            })
        } else {
            Err(InvalidPrefix(prefix.to_string()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn ingest_raw(&self, channel: Option<ChannelKind>) -> String {
        format!("{}.ingest.raw.{}", self.prefix, channel_token(channel))
    }
    /// All raw deliveries of one channel kind, or of every kind.
    pub fn ingest_raw_filter(&self, channel: Option<ChannelKind>) -> String {
        match channel {
            Some(c) => self.ingest_raw(Some(c)),
            None => format!("{}.ingest.raw.*", self.prefix),
        }
    }
    pub fn ingest_quarantine(&self) -> String {
        format!("{}.ingest.quarantine", self.prefix)
    }
    pub fn meta_event(&self, channel: ChannelKind, kind: &str) -> String {
        format!("{}.meta.{}.{}", self.prefix, channel_token(Some(channel)), kind)
    }
    /// Every normalised Meta event (excluding unhandled items).
    pub fn meta_events_filter(&self) -> String {
        format!("{}.meta.*.*", self.prefix)
    }
    pub fn meta_unhandled(&self) -> String {
        format!("{}.meta.unhandled", self.prefix)
    }
    pub fn channel_event(&self, state: ChannelState) -> String {
        let token = match state {
            ChannelState::Connected => "connected",
            ChannelState::NeedsReauth => "needs_reauth",
            ChannelState::Disconnected => "disconnected",
            ChannelState::Unspecified => "unspecified",
        };
        format!("{}.channel.{}", self.prefix, token)
    }
    pub fn channel_events_filter(&self) -> String {
        format!("{}.channel.>", self.prefix)
    }
    pub fn inbox_event(&self, workspace_id: &str, kind: &str) -> String {
        format!("{}.inbox.{}.{}", self.prefix, workspace_id, kind)
    }
    /// Every inbox event of one workspace: what the gateway's watch stream subscribes to.
    pub fn inbox_workspace_filter(&self, workspace_id: &str) -> String {
        format!("{}.inbox.{}.>", self.prefix, workspace_id)
    }
    /// Where the gateway publishes a live-only `InboxEvent` (typing) of one workspace. No stream
    /// captures `<p>.live.>`: these events reach whoever watches at that moment and nobody later.
    pub fn live_event(&self, workspace_id: &str, kind: &str) -> String {
        format!("{}.live.{}.{}", self.prefix, workspace_id, kind)
    }
    /// Every live-only event of one workspace: the watch stream's second subscription.
    pub fn live_workspace_filter(&self, workspace_id: &str) -> String {
        format!("{}.live.{}.>", self.prefix, workspace_id)
    }
    /// Where a service publishes an `AuditEvent` of one workspace.
    pub fn audit_event(&self, workspace_id: &str) -> String {
        format!("{}.audit.{}", self.prefix, workspace_id)
    }
    /// Every audit event of every workspace: what the gateway's audit store consumes.
    pub fn audit_events_filter(&self) -> String {
        format!("{}.audit.>", self.prefix)
    }

    pub fn stream_name(&self, kind: StreamKind) -> String {
        let base = self.prefix.to_ascii_uppercase().replace('-', "_");
        let suffix = match kind {
            StreamKind::Ingest => "INGEST",
            StreamKind::Meta => "META",
            StreamKind::Channels => "CHANNELS",
            StreamKind::Inbox => "INBOX",
            StreamKind::Audit => "AUDIT",
        };
        format!("{base}_{suffix}")
    }

    /// The stream's settings. The ingest log keeps raw deliveries for `retention` so any delivery
    /// can be replayed; the others keep events long enough for a consumer that was down to catch up.
    pub fn stream_config(&self, kind: StreamKind, retention: Duration) -> stream::Config {
        let subjects = match kind {
            StreamKind::Ingest => vec![format!("{}.ingest.>", self.prefix)],
            StreamKind::Meta => vec![format!("{}.meta.>", self.prefix)],
            StreamKind::Channels => vec![format!("{}.channel.>", self.prefix)],
            StreamKind::Inbox => vec![format!("{}.inbox.>", self.prefix)],
            StreamKind::Audit => vec![format!("{}.audit.>", self.prefix)],
        };
        stream::Config {
            name: self.stream_name(kind),
            subjects,
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            // Zero means no age limit.
            max_age: retention,
            // Meta retries a failed delivery within seconds to minutes; later retries and replays
            // are deduplicated by consumers' own unique keys.
            duplicate_window: Duration::from_secs(120),
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }

    /// Creates (or updates) a stream with its default retention.
    pub async fn ensure_default_stream(
        &self,
        js: &jetstream::Context,
        kind: StreamKind,
    ) -> Result<stream::Stream, EnsureStreamError> {
        self.ensure_stream(js, kind, kind.default_retention()).await
    }

    /// Creates (or updates) a stream, retrying briefly: a server that just started, or that just
    /// deleted its last stream, can refuse for a moment (JetStream error 10077).
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
        kind: StreamKind,
        retention: Duration,
    ) -> Result<stream::Stream, EnsureStreamError> {
        let config = self.stream_config(kind, retention);
        let mut last = String::new();
        for attempt in 0..20u64 {
            match js.create_or_update_stream(config.clone()).await {
                Ok(_) => {
                    return js.get_stream(&config.name).await.map_err(|e| EnsureStreamError {
                        name: config.name.clone(),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100 * (attempt + 1).min(5))).await;
                }
            }
        }
        Err(EnsureStreamError {
            name: config.name,
            reason: last,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot create JetStream stream {name}: {reason}")]
pub struct EnsureStreamError {
    pub name: String,
    pub reason: String,
}

fn channel_token(channel: Option<ChannelKind>) -> &'static str {
    match channel {
        Some(ChannelKind::Messenger) => "messenger",
        Some(ChannelKind::Instagram) => "instagram",
        Some(ChannelKind::Whatsapp) => "whatsapp",
        Some(ChannelKind::Unspecified) | None => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let bus = Bus::new("t-42").unwrap();
        assert_eq!(
            bus.ingest_raw(Some(ChannelKind::Whatsapp)),
            "t-42.ingest.raw.whatsapp"
        );
        assert_eq!(bus.ingest_raw(None), "t-42.ingest.raw.other");
        assert_eq!(
            bus.meta_event(ChannelKind::Messenger, "message"),
            "t-42.meta.messenger.message"
        );
        assert_eq!(bus.inbox_workspace_filter("ws1"), "t-42.inbox.ws1.>");
        assert_eq!(bus.live_event("ws1", "typing"), "t-42.live.ws1.typing");
        assert_eq!(bus.live_workspace_filter("ws1"), "t-42.live.ws1.>");
        assert_eq!(bus.stream_name(StreamKind::Ingest), "T_42_INGEST");
        assert_eq!(
            bus.channel_event(ChannelState::Connected),
            "t-42.channel.connected"
        );
    }

    #[test]
    fn prefixes_that_would_break_subjects_are_refused() {
        for bad in ["", "a.b", "A", "a b", "a>", "a*"] {
            assert!(Bus::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn each_stream_owns_a_disjoint_subject_space() {
        let bus = Bus::new("p").unwrap();
        let kinds = [
            StreamKind::Ingest,
            StreamKind::Meta,
            StreamKind::Channels,
            StreamKind::Inbox,
        ];
        let subjects: Vec<String> = kinds
            .iter()
            .flat_map(|k| bus.stream_config(*k, Duration::from_secs(60)).subjects)
            .collect();
        let mut unique = subjects.clone();
        unique.dedup();
        assert_eq!(subjects.len(), unique.len());
        assert!(bus.meta_unhandled().starts_with("p.meta."));
        assert!(bus.ingest_quarantine().starts_with("p.ingest."));
    }

    #[test]
    fn audit_events_have_their_own_stream() {
        let bus = Bus::new("t-42").unwrap();
        assert_eq!(bus.audit_event("ws1"), "t-42.audit.ws1");
        assert_eq!(bus.audit_events_filter(), "t-42.audit.>");
        assert_eq!(bus.stream_name(StreamKind::Audit), "T_42_AUDIT");
        assert_eq!(
            StreamKind::Audit.default_retention(),
            Duration::from_secs(30 * 24 * 3600)
        );
        let audit = bus.stream_config(StreamKind::Audit, Duration::from_secs(60));
        assert_eq!(audit.subjects, vec![bus.audit_events_filter()]);
        for other in [
            StreamKind::Ingest,
            StreamKind::Meta,
            StreamKind::Channels,
            StreamKind::Inbox,
        ] {
            for subject in bus.stream_config(other, Duration::from_secs(60)).subjects {
                assert!(
                    !subject.starts_with("t-42.audit."),
                    "{other:?} overlaps the audit stream"
                );
            }
        }
    }
}
