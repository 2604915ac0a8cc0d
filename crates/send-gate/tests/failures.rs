//! `explain_send_failure` for every row of reference/meta-platform.md §3.4, plus 190 (§6.3) and
//! the throttling codes of §8.1.

use scifer_send_gate::{ChannelKind, explain_send_failure};

use ChannelKind::{Instagram, Messenger, WhatsApp};

/// (code, subcode, expected reason code, retryable, window is the cause)
type Case = (i64, Option<i64>, &'static str, bool, bool);

const PAGE_CASES: &[Case] = &[
    // §3.4 Messenger / Instagram
    (10, Some(2018278), "window_closed", false, true),
    (
        10,
        Some(2018065),
        "outside_window_permission_required",
        false,
        true,
    ),
    (10, Some(2018108), "recipient_not_receiving", false, false),
    (10, Some(2534022), "window_closed", false, true),
    (10, Some(1893063), "page_restricted", false, false),
    (551, Some(1545041), "recipient_unavailable", false, false),
    (551, None, "recipient_unavailable", false, false),
    (200, Some(2018028), "messaging_not_approved", false, false),
    (100, Some(2018001), "recipient_not_found", false, false),
    (1200, None, "temporary_send_failure", true, false),
    (2, None, "temporary_error", true, false),
    (4, Some(2018022), "send_rate_limited", true, false),
    (613, None, "send_rate_limited", true, false),
    (190, None, "token_invalid", false, false),
    // other subcodes of the same codes fall back to the code's general meaning
    (10, None, "permission_missing", false, false),
    (10, Some(12345), "permission_missing", false, false),
    (200, None, "permission_missing", false, false),
    (100, None, "invalid_parameter", false, false),
    (100, Some(36007), "invalid_parameter", false, false),
    (4, None, "app_rate_limited", true, false),
    // §8.1 throttling
    (9, None, "app_rate_limited", true, false),
    (17, None, "user_rate_limited", true, false),
    (32, None, "page_rate_limited", true, false),
    (80001, None, "business_rate_limited", true, false),
    (80002, None, "business_rate_limited", true, false),
    (80006, None, "business_rate_limited", true, false),
    (1, None, "temporary_error", true, false),
    (341, None, "app_limit_reached", false, false),
    (368, None, "blocked_for_policy", false, false),
    // WhatsApp-only codes mean nothing here
    (131047, None, "unknown_send_failure", false, false),
    (99999, None, "unknown_send_failure", false, false),
];

const WHATSAPP_CASES: &[Case] = &[
    (131047, None, "template_required", false, true),
    (131026, None, "undeliverable", false, false),
    (131049, None, "ecosystem_limit", false, false),
    (131050, None, "marketing_opted_out", false, false),
    (131051, None, "unsupported_message_type", false, false),
    (131052, None, "media_download_failed", false, false),
    (131053, None, "media_upload_failed", false, false),
    (131030, None, "recipient_not_allowed", false, false),
    (131008, None, "missing_parameter", false, false),
    (131009, None, "invalid_parameter", false, false),
    (100, None, "invalid_parameter", false, false),
    (132000, None, "template_param_count_mismatch", false, false),
    (132001, None, "template_not_found", false, false),
    (132005, None, "template_text_too_long", false, false),
    (132007, None, "template_policy_violation", false, false),
    (132012, None, "template_param_format_mismatch", false, false),
    (132015, None, "template_paused", false, false),
    (132016, None, "template_disabled", false, false),
    (130429, None, "throughput_exceeded", true, false),
    (131048, None, "spam_rate_limited", true, false),
    (131056, None, "pair_rate_limited", true, false),
    (131000, None, "temporary_error", true, false),
    (131016, None, "service_unavailable", true, false),
    (131031, None, "account_locked", false, false),
    (368, None, "blocked_for_policy", false, false),
    (130497, None, "restricted_in_country", false, false),
    (4, None, "app_rate_limited", true, false),
    (80007, None, "business_rate_limited", true, false),
    (0, None, "auth_failed", false, false),
    (3, None, "capability_missing", false, false),
    (10, None, "permission_missing", false, false),
    (190, None, "token_invalid", false, false),
    (200, None, "permission_missing", false, false),
    (250, None, "permission_missing", false, false),
    (299, None, "permission_missing", false, false),
    (1, None, "temporary_error", true, false),
    (2, None, "temporary_error", true, false),
    // Messenger subcodes do not turn a WhatsApp permission error into a window error
    (10, Some(2018278), "permission_missing", false, false),
    (99999, None, "unknown_send_failure", false, false),
];

fn check(channel: ChannelKind, cases: &[Case]) {
    for &(code, subcode, want, retryable, window) in cases {
        let got = explain_send_failure(channel, code, subcode);
        let case = format!("{channel:?} {code}/{subcode:?}");
        assert_eq!(got.code, want, "{case}");
        assert_eq!(got.retryable, retryable, "{case}");
        assert_eq!(got.window_closed, window, "{case}");
        assert!(
            !got.text.is_empty() && got.text.ends_with('.'),
            "{case}: {}",
            got.text
        );
    }
}

#[test]
fn messenger_failures() {
    check(Messenger, PAGE_CASES);
}

#[test]
fn instagram_failures() {
    check(Instagram, PAGE_CASES);
}

#[test]
fn whatsapp_failures() {
    check(WhatsApp, WHATSAPP_CASES);
}

#[test]
fn reengagement_says_send_a_template() {
    let r = explain_send_failure(WhatsApp, 131047, None);
    assert_eq!(r.code, "template_required");
    assert!(!r.retryable);
    assert!(r.window_closed);
    assert!(r.text.contains("template"), "{}", r.text);
}

#[test]
fn token_errors_never_retry_whatever_the_subcode() {
    for channel in [Messenger, Instagram, WhatsApp] {
        for sub in [
            None,
            Some(458),
            Some(459),
            Some(460),
            Some(463),
            Some(464),
            Some(467),
            Some(492),
        ] {
            let r = explain_send_failure(channel, 190, sub);
            assert_eq!(r.code, "token_invalid", "{channel:?} {sub:?}");
            assert!(!r.retryable, "{channel:?} {sub:?}");
        }
    }
}

#[test]
fn business_use_case_throttling_is_retryable_on_every_channel() {
    for channel in [Messenger, Instagram, WhatsApp] {
        for code in [
            80000, 80001, 80002, 80003, 80004, 80005, 80006, 80007, 80009, 80014,
        ] {
            let r = explain_send_failure(channel, code, None);
            assert_eq!(r.code, "business_rate_limited", "{channel:?} {code}");
            assert!(r.retryable, "{channel:?} {code}");
        }
    }
}

#[test]
fn failure_codes_are_snake_case_and_texts_consistent() {
    use std::collections::HashMap;
    // One code always comes with the same text and flags, whichever Meta code produced it.
    let mut seen: HashMap<&str, (&str, bool, bool)> = HashMap::new();
    let all = PAGE_CASES
        .iter()
        .map(|c| (Messenger, c))
        .chain(WHATSAPP_CASES.iter().map(|c| (WhatsApp, c)));
    for (channel, &(code, subcode, ..)) in all {
        let r = explain_send_failure(channel, code, subcode);
        assert!(
            !r.code.is_empty()
                && !r.code.starts_with('_')
                && !r.code.ends_with('_')
                && !r.code.contains("__")
                && r.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{}",
            r.code
        );
        let entry = seen
            .entry(r.code)
            .or_insert((r.text, r.retryable, r.window_closed));
        assert_eq!(*entry, (r.text, r.retryable, r.window_closed), "{}", r.code);
    }
    // Different reasons read differently.
    let mut texts: HashMap<&str, &str> = HashMap::new();
    for (code, (text, ..)) in &seen {
        if let Some(other) = texts.insert(text, code) {
            panic!("{code} and {other} share a text");
        }
    }
}
