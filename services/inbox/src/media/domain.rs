//! Pure rules of the attachment copies: which attachments get one, where a copy is kept, which
//! hosts may serve it, how long to wait before the next try, and what a failed download means.

use scifer_proto::{events::v1 as ev, inbox::v1::MediaState};

use crate::convert::AttachmentRecord;

/// Where an attachment's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Messenger/Instagram CDN URL, fetched directly (it carries its own signature).
    Url(String),
    /// A WhatsApp media id, fetched through token-vault with the channel's token.
    WhatsApp(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Url(_) => SOURCE_URL,
            Self::WhatsApp(_) => SOURCE_WHATSAPP,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Url(v) | Self::WhatsApp(v) => v,
        }
    }

    pub fn from_row(kind: &str, value: &str) -> Option<Self> {
        match kind {
            SOURCE_URL => Some(Self::Url(value.to_string())),
            SOURCE_WHATSAPP => Some(Self::WhatsApp(value.to_string())),
            _ => None,
        }
    }
}

pub const SOURCE_URL: &str = "url";
pub const SOURCE_WHATSAPP: &str = "whatsapp";

/// Attachment types that are files (not a link share, a template, a story reply without media
/// or a fallback).
const MEDIA_TYPES: &[&str] = &[
    "image",
    "video",
    "audio",
    "file",
    "document",
    "sticker",
    "story_mention",
    "ig_reel",
    "reel",
];

/// The copy to make of an inbound attachment, if any.
pub fn source_of(a: &ev::Attachment) -> Option<Source> {
    if !MEDIA_TYPES.contains(&a.r#type.as_str()) {
        return None;
    }
    if !a.media_id.is_empty() {
        return Some(Source::WhatsApp(a.media_id.clone()));
    }
    if a.url.starts_with("https://") || a.url.starts_with("http://") {
        return Some(Source::Url(a.url.clone()));
    }
    None
}

/// The stored attachment records of an inbound message (copies to be made marked PENDING) and
/// the copies to make, by attachment index.
pub fn plan(attachments: &[ev::Attachment]) -> (Vec<AttachmentRecord>, Vec<(i32, Source)>) {
    let mut records = Vec::with_capacity(attachments.len());
    let mut jobs = Vec::new();
    for (i, a) in attachments.iter().enumerate() {
        let mut record = AttachmentRecord::from(a);
        if let (Some(source), Ok(index)) = (source_of(a), i32::try_from(i)) {
            record.media_state = MediaState::Pending as i32;
            jobs.push((index, source));
        }
        records.push(record);
    }
    (records, jobs)
}

/// The object key of a stored file: content-addressed within its workspace and channel, so a
/// file received twice is kept once and a disconnect deletes one prefix.
pub fn storage_key(workspace_id: &str, channel_id: &str, sha256_hex: &str) -> String {
    format!("{}{sha256_hex}", channel_prefix(workspace_id, channel_id))
}

pub fn channel_prefix(workspace_id: &str, channel_id: &str) -> String {
    format!("{}/{}/", safe(workspace_id), safe(channel_id))
}

/// Ids are UUIDs and Graph ids; anything else is mapped to `_` so a key never leaves its prefix.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The hosts attachment URLs may be fetched from: exact names, and `.example.com` for
/// `example.com`'s subdomains (and itself).
#[derive(Debug, Clone, Default)]
pub struct HostAllowList {
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl HostAllowList {
    pub fn parse(list: &str) -> Self {
        let mut allowed = Self::default();
        for entry in list.split(',').map(|h| h.trim().to_ascii_lowercase()) {
            if entry.is_empty() {
                continue;
            }
            if entry.starts_with('.') {
                allowed.suffixes.push(entry);
            } else {
                allowed.exact.push(entry);
            }
        }
        allowed
    }

    pub fn allows(&self, url: &url::Url) -> bool {
        if !matches!(url.scheme(), "https" | "http") {
            return false;
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        self.exact.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|s| host.ends_with(s.as_str()) || host == s[1..])
    }
}

/// How one try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Meta's URL no longer works (403/404/410 from the CDN, or the media id is gone).
    Expired(String),
    /// Will not work however often it is tried.
    Permanent(String),
    /// May work later (network, 5xx, throttling, the vault unreachable).
    Transient(String),
}

impl FetchError {
    pub fn reason(&self) -> &str {
        match self {
            Self::Expired(r) | Self::Permanent(r) | Self::Transient(r) => r,
        }
    }

    /// What an HTTP status from a CDN means.
    pub fn from_http_status(status: u16) -> Self {
        let reason = format!("http_{status}");
        match status {
            403 | 404 | 410 => Self::Expired(reason),
            408 | 425 | 429 | 500..=599 => Self::Transient(reason),
            _ => Self::Permanent(reason),
        }
    }
}

/// The state after a failed try number `attempt` (1-based), and when to try again if at all.
pub fn after_failure(
    error: &FetchError,
    attempt: u32,
    max_attempts: u32,
    base_ms: u64,
    now_ms: i64,
) -> (MediaState, Option<i64>) {
    match error {
        FetchError::Expired(_) => (MediaState::Expired, None),
        FetchError::Permanent(_) => (MediaState::Failed, None),
        FetchError::Transient(_) if attempt >= max_attempts => (MediaState::Failed, None),
        FetchError::Transient(_) => {
            // base, 2x, 4x, ... capped at an hour.
            let factor = 1u64 << attempt.saturating_sub(1).min(16);
            let wait = base_ms.saturating_mul(factor).min(3_600_000);
            let wait = i64::try_from(wait).unwrap_or(3_600_000);
            (MediaState::Pending, Some(now_ms.saturating_add(wait)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(kind: &str, url: &str, media_id: &str) -> ev::Attachment {
        ev::Attachment {
            r#type: kind.into(),
            url: url.into(),
            media_id: media_id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_files_with_a_source_get_a_copy() {
        let (records, jobs) = plan(&[
            att("image", "https://scontent.fbcdn.net/a.jpg", ""),
            att("template", "", ""),
            att("share", "https://example.com/article", ""),
            att("document", "", "1234"),
            att("fallback", "https://example.com", ""),
            att("image", "", ""),
        ]);
        assert_eq!(
            jobs,
            vec![
                (0, Source::Url("https://scontent.fbcdn.net/a.jpg".into())),
                (3, Source::WhatsApp("1234".into())),
            ]
        );
        let states: Vec<i32> = records.iter().map(|r| r.media_state).collect();
        let pending = MediaState::Pending as i32;
        assert_eq!(states, vec![pending, 0, 0, pending, 0, 0]);
    }

    #[test]
    fn keys_stay_inside_their_channel_prefix() {
        assert_eq!(storage_key("ws-1", "ch_2", "ab"), "ws-1/ch_2/ab");
        assert_eq!(channel_prefix("../x", "a/b"), "___x/a_b/");
    }

    #[test]
    fn the_allow_list_takes_exact_hosts_and_subdomains() {
        let list = HostAllowList::parse(".fbcdn.net, 127.0.0.1 ,lookaside.fbsbx.com");
        let ok = |u: &str| list.allows(&url::Url::parse(u).unwrap());
        assert!(ok("https://scontent.xx.fbcdn.net/v/t1.jpg?oh=1"));
        assert!(ok("https://fbcdn.net/a"));
        assert!(ok("http://127.0.0.1:8080/_media/t"));
        assert!(ok("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"));
        assert!(!ok("https://evilfbcdn.net/a"));
        assert!(!ok("https://fbcdn.net.evil.com/a"));
        assert!(!ok("https://other.fbsbx.com/a"));
        assert!(!ok("file:///etc/passwd"));
    }

    #[test]
    fn expired_urls_stop_and_transient_failures_back_off_until_the_last_try() {
        let now = 1_000;
        assert_eq!(
            after_failure(&FetchError::from_http_status(403), 1, 5, 100, now),
            (MediaState::Expired, None)
        );
        assert_eq!(
            after_failure(&FetchError::from_http_status(400), 1, 5, 100, now),
            (MediaState::Failed, None)
        );
        let transient = FetchError::from_http_status(503);
        assert_eq!(
            after_failure(&transient, 1, 5, 100, now),
            (MediaState::Pending, Some(1_100))
        );
        assert_eq!(
            after_failure(&transient, 3, 5, 100, now),
            (MediaState::Pending, Some(1_400))
        );
        assert_eq!(
            after_failure(&transient, 5, 5, 100, now),
            (MediaState::Failed, None)
        );
    }
}
