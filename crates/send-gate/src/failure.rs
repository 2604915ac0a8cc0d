//! Meta's send errors explained for people and machines (reference/meta-platform.md §3.4, plus
//! 190 from §6.3 and the throttling codes of §8.1).
//!
//! This is the other half of "never show a failure as sent": when Meta refuses a message anyway,
//! the conversation shows why, and the outbox knows whether to try again. Retry mechanics (which
//! bucket to back off, `is_transient`, HTTP status) belong to the Graph client; this table only
//! answers whether retrying the same message can help at all.

use crate::ChannelKind;

/// A Meta send error, explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureReason {
    /// Stable, machine-readable snake_case code. Several Meta codes share one when the remedy is
    /// the same (for example every "outside the window" subcode is `window_closed`); the codes
    /// that also exist as [`crate::RefusalReason::code`] mean the same thing there.
    pub code: &'static str,
    /// One sentence for the conversation view.
    pub text: &'static str,
    /// Whether sending the same message again (after a backoff) can succeed.
    pub retryable: bool,
    /// Whether the messaging window is the cause. The gate should have refused such a send, so
    /// this points at a stale `last_customer_message_at`, a skewed clock or a changed Meta rule.
    pub window_closed: bool,
}

const fn reason(code: &'static str, text: &'static str, retryable: bool) -> FailureReason {
    FailureReason {
        code,
        text,
        retryable,
        window_closed: false,
    }
}

const fn window(code: &'static str, text: &'static str) -> FailureReason {
    FailureReason {
        code,
        text,
        retryable: false,
        window_closed: true,
    }
}

const PERMISSION_MISSING: FailureReason = reason(
    "permission_missing",
    "The app lacks a permission or capability Meta requires for this send; fix the app's permissions or App Review.",
    false,
);
const INVALID_PARAMETER: FailureReason = reason(
    "invalid_parameter",
    "Meta rejected a parameter of the message as invalid.",
    false,
);
const TEMPORARY_ERROR: FailureReason = reason(
    "temporary_error",
    "Meta had a temporary problem sending the message; it will be retried.",
    true,
);
const BLOCKED_FOR_POLICY: FailureReason = reason(
    "blocked_for_policy",
    "The account is temporarily blocked from sending for a policy violation.",
    false,
);
const APP_RATE_LIMITED: FailureReason = reason(
    "app_rate_limited",
    "The app hit Meta's rate limit; the message will be retried after a pause.",
    true,
);
const SEND_RATE_LIMITED: FailureReason = reason(
    "send_rate_limited",
    "Messages are being sent faster than Meta allows; the message will be retried after a pause.",
    true,
);
const BUSINESS_RATE_LIMITED: FailureReason = reason(
    "business_rate_limited",
    "This business account hit Meta's rate limit; the message will be retried after a pause.",
    true,
);

/// Explain a Meta send error by its `code` and `error_subcode` (for WhatsApp also the code of a
/// `failed` status). Never keyed on message text. Unknown codes get a generic, non-retryable
/// explanation: resending a message whose fate is unknown risks a duplicate.
pub fn explain_send_failure(channel: ChannelKind, code: i64, subcode: Option<i64>) -> FailureReason {
    let specific = match channel {
        ChannelKind::Messenger | ChannelKind::Instagram => page_failure(code, subcode),
        ChannelKind::WhatsApp => whatsapp_failure(code),
    };
    specific.or_else(|| graph_failure(code)).unwrap_or(reason(
        "unknown_send_failure",
        "Meta rejected the message with an error Scifer does not recognise; see the error code in the message details.",
        false,
    ))
}

/// Messenger / Instagram table of §3.4.
fn page_failure(code: i64, subcode: Option<i64>) -> Option<FailureReason> {
    let r = match (code, subcode) {
        // 2534022 is the Instagram form (observed, UNCERTAIN); accepted on both channels since
        // the meaning cannot differ.
        (10, Some(2018278 | 2534022)) => window(
            "window_closed",
            "The message was sent outside the messaging window; only a human agent can still reply (within the human agent window), otherwise wait for the customer to write.",
        ),
        (10, Some(2018065)) => window(
            "outside_window_permission_required",
            "The message was sent outside the messaging window and would need a special permission (such as Human Agent) that the app does not have.",
        ),
        (10, Some(2018108)) => reason(
            "recipient_not_receiving",
            "This person is not receiving messages from this Page right now.",
            false,
        ),
        (10, Some(1893063)) => reason(
            "page_restricted",
            "The Page is temporarily restricted from sending messages; wait a long time before trying again.",
            false,
        ),
        // 1545041 is the usual subcode; the whole code means the same.
        (551, _) => reason(
            "recipient_unavailable",
            "This person isn't available right now (they may have blocked the Page or deactivated their account).",
            false,
        ),
        (200, Some(2018028)) => reason(
            "messaging_not_approved",
            "The app cannot message this person: pages_messaging is not approved or the app is not live.",
            false,
        ),
        (100, Some(2018001)) => reason(
            "recipient_not_found",
            "No person matches this conversation's recipient id.",
            false,
        ),
        (1200, _) => reason(
            "temporary_send_failure",
            "Meta could not send the message this time; it will be retried.",
            true,
        ),
        (4, Some(2018022)) => SEND_RATE_LIMITED,
        // Everything else (other code 10 subcodes, 613, 190, BUC throttling) is Graph-wide.
        _ => return None,
    };
    Some(r)
}

/// WhatsApp table of §3.4 (codes arrive synchronously or in a `failed` status; no subcodes).
fn whatsapp_failure(code: i64) -> Option<FailureReason> {
    let r = match code {
        131047 => window(
            "template_required",
            "More than 24 hours have passed since the customer last wrote; only an approved template can reach them now.",
        ),
        131026 => reason(
            "undeliverable",
            "The message could not be delivered (not a WhatsApp user, outdated app, or terms not accepted).",
            false,
        ),
        131049 => reason(
            "ecosystem_limit",
            "WhatsApp withheld this message to limit how many marketing messages the person receives; do not resend it for at least 24 hours.",
            false,
        ),
        131050 => reason(
            "marketing_opted_out",
            "The person has stopped marketing messages from this business.",
            false,
        ),
        131051 => reason(
            "unsupported_message_type",
            "WhatsApp does not support this message type.",
            false,
        ),
        131052 => reason(
            "media_download_failed",
            "WhatsApp could not download the media in this message.",
            false,
        ),
        131053 => reason(
            "media_upload_failed",
            "WhatsApp could not upload the media in this message.",
            false,
        ),
        131030 => reason(
            "recipient_not_allowed",
            "This number is not in the test number's allowed recipient list.",
            false,
        ),
        131008 => reason(
            "missing_parameter",
            "A required parameter of the message is missing.",
            false,
        ),
        131009 => INVALID_PARAMETER,
        132000 => reason(
            "template_param_count_mismatch",
            "The number of template parameters does not match the template.",
            false,
        ),
        132001 => reason(
            "template_not_found",
            "The template does not exist in this language or is not approved.",
            false,
        ),
        132005 => reason(
            "template_text_too_long",
            "The template text is too long once its parameters are filled in.",
            false,
        ),
        132007 => reason(
            "template_policy_violation",
            "The template content violates a WhatsApp policy.",
            false,
        ),
        132012 => reason(
            "template_param_format_mismatch",
            "A template parameter has the wrong format.",
            false,
        ),
        132015 => reason(
            "template_paused",
            "The template is paused because of low quality; choose another template.",
            false,
        ),
        132016 => reason(
            "template_disabled",
            "The template is disabled because of low quality; choose another template.",
            false,
        ),
        130429 => reason(
            "throughput_exceeded",
            "The phone number is sending faster than WhatsApp allows; the message will be retried after a pause.",
            true,
        ),
        131048 => reason(
            "spam_rate_limited",
            "WhatsApp limited sending from this number because earlier messages were blocked or reported; the message will be retried after a pause.",
            true,
        ),
        131056 => reason(
            "pair_rate_limited",
            "Too many messages were sent to this person in a short time; the message will be retried after a pause.",
            true,
        ),
        131000 => TEMPORARY_ERROR,
        131016 => reason(
            "service_unavailable",
            "WhatsApp is temporarily unavailable; the message will be retried.",
            true,
        ),
        131031 => reason(
            "account_locked",
            "The WhatsApp business account is locked.",
            false,
        ),
        130497 => reason(
            "restricted_in_country",
            "The business account is restricted from messaging people in this country.",
            false,
        ),
        // 0, 3, 4, 10, 100, 190, 200-299, 368 and 80007 are Graph-wide.
        _ => return None,
    };
    Some(r)
}

/// Graph-wide codes (§3.4 last WhatsApp row, §6.3, §8.1) that can come back from any send.
fn graph_failure(code: i64) -> Option<FailureReason> {
    let r = match code {
        0 => reason(
            "auth_failed",
            "Meta could not authenticate the app; reconnect the channel.",
            false,
        ),
        3 => reason(
            "capability_missing",
            "The app lacks the capability to call this API.",
            false,
        ),
        190 => reason(
            "token_invalid",
            "The channel's access token is invalid or expired; reconnect the channel.",
            false,
        ),
        1 | 2 => TEMPORARY_ERROR,
        4 | 9 => APP_RATE_LIMITED,
        17 => reason(
            "user_rate_limited",
            "Meta's per-user rate limit was reached; the message will be retried after a pause.",
            true,
        ),
        32 => reason(
            "page_rate_limited",
            "This Page hit Meta's rate limit; the message will be retried after a pause.",
            true,
        ),
        613 => SEND_RATE_LIMITED,
        80000..=80014 => BUSINESS_RATE_LIMITED,
        10 | 200..=299 => PERMISSION_MISSING,
        100 => INVALID_PARAMETER,
        341 => reason(
            "app_limit_reached",
            "The app reached a Meta limit; sending is paused until it is lifted.",
            false,
        ),
        368 => BLOCKED_FOR_POLICY,
        _ => return None,
    };
    Some(r)
}
