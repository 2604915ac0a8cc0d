//! Graph errors: the client's error type, Meta's error envelope (§8.1) and the classification
//! callers branch on (never on message text).

use std::time::Duration;

use serde_json::Value;

use crate::usage::ThrottleScope;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with its error envelope.
    #[error("{0}")]
    Meta(MetaError),
    /// The request did not complete (connect, TLS, timeout, reset) or a gateway in front of Graph
    /// answered 5xx without a Graph body. Never carries the URL (it may hold secrets).
    #[error("Graph request failed: {0}")]
    Transport(String),
    /// Refused locally, without calling Meta: the bucket is blocked after a throttling error.
    #[error("Graph calls for {scope} are paused for {}s after Meta throttled them", retry_after.as_secs())]
    Throttled {
        retry_after: Duration,
        scope: ThrottleScope,
    },
    #[error("unexpected Graph response: {0}")]
    Decode(String),
    #[error("invalid Graph configuration: {0}")]
    Config(String),
}

impl GraphError {
    /// What the caller should do about it, for every variant: transport failures are transient,
    /// local refusals are throttling, malformed responses and bad configuration are `Other`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::Meta(e) => e.kind,
            GraphError::Transport(_) => ErrorKind::Transient,
            GraphError::Throttled { .. } => ErrorKind::Throttled,
            GraphError::Decode(_) | GraphError::Config(_) => ErrorKind::Other,
        }
    }

    /// How long to wait before trying again, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Meta(e) => e.retry_after,
            GraphError::Throttled { retry_after, .. } => Some(*retry_after),
            GraphError::Transport(_) | GraphError::Decode(_) | GraphError::Config(_) => None,
        }
    }

    pub fn as_meta(&self) -> Option<&MetaError> {
        match self {
            GraphError::Meta(e) => Some(e),
            _ => None,
        }
    }
}

/// Meta's error envelope, decoded and classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaError {
    pub kind: ErrorKind,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    /// `type`: usually `OAuthException`.
    pub error_type: Option<String>,
    pub is_transient: bool,
    pub fbtrace_id: Option<String>,
    pub http_status: u16,
    /// Set for throttling errors: how long the bucket is blocked.
    pub retry_after: Option<Duration>,
}

/// Error messages come from Meta and may echo request input; keep them bounded.
const MAX_MESSAGE_CHARS: usize = 1000;

impl MetaError {
    /// Decode `{"error":{...}}`. `None` when the body has no `error` object. A missing `code`
    /// becomes `-1` so that classification falls back to `is_transient` and the HTTP status.
    /// WhatsApp's `error_data.details` (often the useful part) is appended to the message in
    /// parentheses.
    pub fn from_envelope(body: &Value, http_status: u16) -> Option<MetaError> {
        let err = body.get("error")?.as_object()?;
        let code = err.get("code").and_then(as_i64).unwrap_or(-1);
        let subcode = err.get("error_subcode").and_then(as_i64);
        let is_transient = err.get("is_transient").and_then(Value::as_bool).unwrap_or(false);
        let text = |key: &str| {
            err.get(key)
                .and_then(Value::as_str)
                .map(|s| truncate(s, MAX_MESSAGE_CHARS))
        };
        let details = match err.get("error_data") {
            Some(Value::Object(data)) => data.get("details").and_then(Value::as_str).map(str::to_owned),
            // Older endpoints send error_data as a JSON-encoded string.
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|v| v.get("details").and_then(Value::as_str).map(str::to_owned)),
            _ => None,
        }
        .map(|d| truncate(&d, MAX_MESSAGE_CHARS));
        let mut message = text("message").unwrap_or_default();
        if let Some(details) = details {
            message = format!("{message} ({details})");
        }
        Some(MetaError {
            kind: classify(code, subcode, is_transient, http_status),
            code,
            subcode,
            message,
            error_type: text("type"),
            is_transient,
            fbtrace_id: text("fbtrace_id"),
            http_status,
            retry_after: None,
        })
    }
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Meta error {}", self.code)?;
        if let Some(sub) = self.subcode {
            write!(f, "/{sub}")?;
        }
        write!(
            f,
            " ({:?}, HTTP {}): {}",
            self.kind, self.http_status, self.message
        )?;
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {trace}]")?;
        }
        Ok(())
    }
}

/// Codes arrive as numbers, occasionally as numeric strings.
fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

/// What a caller should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 190 (and 102, 0): the token is dead; mark the channel for re-authorization, never retry.
    TokenInvalid,
    /// 3, 10, 200-299: missing permission or capability; fix configuration/App Review.
    Permission,
    /// Rate limited (4, 9, 17, 32, 613, 800xx, WhatsApp throughput): wait, then retry.
    Throttled,
    /// 1, 2, 1200, 131000, 131016, `is_transient`, 5xx: retry with backoff.
    Transient,
    /// 100 and parameter errors: the request is wrong; don't retry.
    InvalidRequest,
    /// Messaging/content policy (window closed, recipient unavailable, blocked for policy):
    /// don't retry; tell the user.
    Policy,
    /// 506: duplicate post.
    Duplicate,
    Other,
}

/// Classify a Graph error. Pure: keyed on `code` and `subcode` first, then `is_transient`, then
/// the HTTP status. Tables: reference/meta-platform.md §3.4, §6.3 and §8.1.
pub fn classify(code: i64, subcode: Option<i64>, is_transient: bool, http_status: u16) -> ErrorKind {
    // Code 10 carries messaging-window and Page-restriction errors in its subcodes.
    const POLICY_SUBCODES_OF_10: &[i64] = &[
        2018278, // outside the allowed window
        2018065, // outside the window, special permission needed
        2018108, // person is not receiving messages from this Page
        2534022, // Instagram: outside the allowed window
        1893063, // Page temporarily restricted from sending
    ];
    match (code, subcode) {
        (190 | 102 | 0, _) => ErrorKind::TokenInvalid,
        (4 | 9 | 17 | 32 | 613 | 80000..=80014, _) => ErrorKind::Throttled,
        // WhatsApp: throughput, spam rate limit, pair rate limit.
        (130429 | 131048 | 131056, _) => ErrorKind::Throttled,
        (506, _) => ErrorKind::Duplicate,
        (10, Some(sub)) if POLICY_SUBCODES_OF_10.contains(&sub) => ErrorKind::Policy,
        // 341 app limit, 368 blocked for policy, 551 person unavailable.
        (341 | 368 | 551, _) => ErrorKind::Policy,
        // WhatsApp: re-engagement, undeliverable, ecosystem/marketing limits, locked/restricted
        // accounts, template policy/paused/disabled.
        (131047 | 131026 | 131049 | 131050 | 131031 | 130497 | 132007 | 132015 | 132016, _) => {
            ErrorKind::Policy
        }
        (1 | 2 | 1200 | 131000 | 131016, _) => ErrorKind::Transient,
        (3 | 10 | 200..=299, _) => ErrorKind::Permission,
        // WhatsApp test numbers: recipient not in the allowed list.
        (131030, _) => ErrorKind::Permission,
        (100 | 131008 | 131009 | 131051 | 131052 | 131053, _) => ErrorKind::InvalidRequest,
        (132000 | 132001 | 132005 | 132012, _) => ErrorKind::InvalidRequest,
        _ if is_transient || http_status >= 500 => ErrorKind::Transient,
        _ if http_status == 429 => ErrorKind::Throttled,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classify_table() {
        use ErrorKind::*;
        // (code, subcode, is_transient, http status, expected)
        let table: &[(i64, Option<i64>, bool, u16, ErrorKind)] = &[
            // §8.1
            (1, None, false, 500, Transient),
            (2, None, true, 500, Transient),
            (2, None, false, 400, Transient),
            (4, None, false, 400, Throttled),
            (4, Some(2018022), false, 400, Throttled),
            (17, None, false, 400, Throttled),
            (32, None, false, 400, Throttled),
            (613, None, false, 400, Throttled),
            (9, None, false, 400, Throttled),
            (80000, None, false, 400, Throttled),
            (80001, None, false, 400, Throttled),
            (80002, None, false, 400, Throttled),
            (80003, None, false, 400, Throttled),
            (80004, None, false, 400, Throttled),
            (80005, None, false, 400, Throttled),
            (80006, None, false, 400, Throttled),
            (80007, None, false, 400, Throttled),
            (80009, None, false, 400, Throttled),
            (80014, None, false, 400, Throttled),
            (10, None, false, 403, Permission),
            (200, None, false, 403, Permission),
            (200, Some(2018028), false, 400, Permission),
            (230, None, false, 400, Permission),
            (299, None, false, 400, Permission),
            (100, None, false, 400, InvalidRequest),
            (100, Some(2018001), false, 400, InvalidRequest),
            (100, Some(36007), false, 400, InvalidRequest),
            (190, None, false, 400, TokenInvalid),
            (341, None, false, 400, Policy),
            (368, None, false, 400, Policy),
            (506, None, false, 400, Duplicate),
            // §6.3: 190 with every documented subcode
            (190, Some(458), false, 400, TokenInvalid),
            (190, Some(459), false, 400, TokenInvalid),
            (190, Some(460), false, 400, TokenInvalid),
            (190, Some(463), false, 400, TokenInvalid),
            (190, Some(464), false, 400, TokenInvalid),
            (190, Some(467), false, 400, TokenInvalid),
            (190, Some(492), false, 400, TokenInvalid),
            // a token error stays a token error even if flagged transient or sent as 500
            (190, Some(463), true, 500, TokenInvalid),
            // §3.4 Messenger / Instagram
            (10, Some(2018278), false, 400, Policy),
            (10, Some(2018065), false, 400, Policy),
            (10, Some(2018108), false, 400, Policy),
            (10, Some(2534022), false, 400, Policy),
            (10, Some(1893063), false, 400, Policy),
            (10, Some(12345), false, 400, Permission),
            (551, Some(1545041), false, 400, Policy),
            (1200, None, false, 400, Transient),
            // §3.4 WhatsApp
            (131047, None, false, 400, Policy),
            (131026, None, false, 400, Policy),
            (131049, None, false, 400, Policy),
            (131050, None, false, 400, Policy),
            (131031, None, false, 400, Policy),
            (130497, None, false, 400, Policy),
            (132007, None, false, 400, Policy),
            (132015, None, false, 400, Policy),
            (132016, None, false, 400, Policy),
            (130429, None, false, 400, Throttled),
            (131048, None, false, 400, Throttled),
            (131056, None, false, 400, Throttled),
            (131000, None, false, 500, Transient),
            (131016, None, false, 503, Transient),
            (131030, None, false, 400, Permission),
            (131008, None, false, 400, InvalidRequest),
            (131009, None, false, 400, InvalidRequest),
            (131051, None, false, 400, InvalidRequest),
            (131052, None, false, 400, InvalidRequest),
            (131053, None, false, 400, InvalidRequest),
            (132000, None, false, 400, InvalidRequest),
            (132001, None, false, 400, InvalidRequest),
            (132005, None, false, 400, InvalidRequest),
            (132012, None, false, 400, InvalidRequest),
            (0, None, false, 401, TokenInvalid),
            (3, None, false, 400, Permission),
            // fallbacks: is_transient, then the HTTP status
            (99999, None, true, 400, Transient),
            (99999, None, false, 502, Transient),
            (99999, None, false, 429, Throttled),
            (99999, None, false, 400, Other),
            (-1, None, false, 400, Other),
        ];
        for &(code, sub, transient, status, expected) in table {
            assert_eq!(
                classify(code, sub, transient, status),
                expected,
                "code {code} subcode {sub:?} transient {transient} status {status}"
            );
        }
    }

    #[test]
    fn envelope_is_decoded_with_subcode_transient_flag_and_trace() {
        let body = json!({"error":{
            "message":"(#100) Param recipient[id] must be a valid ID string",
            "type":"OAuthException","code":100,"error_subcode":2018001,
            "error_user_title":"t","error_user_msg":"Try another recipient",
            "is_transient":false,"fbtrace_id":"A6LJylpZRKw2xKLFsAP-cJh"}});
        let e = MetaError::from_envelope(&body, 400).unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.code, 100);
        assert_eq!(e.subcode, Some(2018001));
        assert_eq!(e.message, "(#100) Param recipient[id] must be a valid ID string");
        assert_eq!(e.error_type.as_deref(), Some("OAuthException"));
        assert!(!e.is_transient);
        assert_eq!(e.fbtrace_id.as_deref(), Some("A6LJylpZRKw2xKLFsAP-cJh"));
        assert_eq!(e.http_status, 400);
        assert_eq!(e.retry_after, None);

        let transient = json!({"error":{"message":"x","code":2,"is_transient":true}});
        let e = MetaError::from_envelope(&transient, 500).unwrap();
        assert!(e.is_transient);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert_eq!(e.subcode, None);
    }

    #[test]
    fn envelope_details_from_object_or_string_error_data() {
        let body = json!({"error":{"message":"(#131009) Parameter value is not valid","type":"OAuthException","code":131009,
            "error_data":{"messaging_product":"whatsapp","details":"Unsupported template language"},
            "fbtrace_id":"AbCdEfGh123"}});
        let e = MetaError::from_envelope(&body, 400).unwrap();
        assert_eq!(
            e.message,
            "(#131009) Parameter value is not valid (Unsupported template language)"
        );

        let body =
            json!({"error":{"message":"m","code":"131009","error_data":"{\"details\":\"as string\"}"}});
        let e = MetaError::from_envelope(&body, 400).unwrap();
        assert_eq!(e.code, 131009);
        assert_eq!(e.message, "m (as string)");
    }

    #[test]
    fn envelope_without_error_or_code() {
        assert!(MetaError::from_envelope(&json!({"id":"1"}), 200).is_none());
        assert!(MetaError::from_envelope(&json!({"error":"nope"}), 400).is_none());
        let e = MetaError::from_envelope(&json!({"error":{"message":"?"}}), 503).unwrap();
        assert_eq!(e.code, -1);
        assert_eq!(e.kind, ErrorKind::Transient);
    }

    #[test]
    fn graph_error_stays_small() {
        // Results carrying it stay cheap to move (clippy::result_large_err).
        assert!(std::mem::size_of::<GraphError>() <= 128);
    }

    #[test]
    fn long_messages_are_truncated() {
        let long = "é".repeat(5000);
        let e = MetaError::from_envelope(&json!({"error":{"message":long,"code":100}}), 400).unwrap();
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn display_shows_code_subcode_and_trace() {
        let body = json!({"error":{"message":"Session expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"T1"}});
        let e = MetaError::from_envelope(&body, 400).unwrap();
        assert_eq!(
            e.to_string(),
            "Meta error 190/463 (TokenInvalid, HTTP 400): Session expired [fbtrace_id T1]"
        );
    }

    #[test]
    fn graph_error_kind_and_retry_after() {
        let t = GraphError::Throttled {
            retry_after: Duration::from_secs(60),
            scope: ThrottleScope::App,
        };
        assert_eq!(t.kind(), ErrorKind::Throttled);
        assert_eq!(t.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(GraphError::Transport("x".into()).kind(), ErrorKind::Transient);
        assert_eq!(GraphError::Decode("x".into()).kind(), ErrorKind::Other);
    }
}
