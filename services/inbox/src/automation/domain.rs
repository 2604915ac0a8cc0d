//! The pure parts of automation in the inbox: reading rules and settings from their API form,
//! who handles a conversation after a handover event, and the webhook signature.

use chrono::TimeDelta;
use ring::hmac;
use scifer_automation::{BusinessHours, HandlerKind, Limits, Rule, validate, validate_template};
use scifer_proto::{events::v1::HandoverKind, inbox::v1 as pb};

/// Bounds of the per-conversation reply limit an admin may set.
pub const MAX_REPLIES_LIMIT: i32 = 1000;
pub const MAX_WINDOW_SECS: i32 = 86_400;
/// Longest rule JSON accepted.
pub const MAX_RULE_JSON: usize = 64 * 1024;
/// Longest business hours JSON accepted.
pub const MAX_HOURS_JSON: usize = 64 * 1024;
/// Longest handoff reason.
pub const MAX_REASON_CHARS: usize = 200;
/// Rules per workspace: each inbound message evaluates them all.
pub const MAX_RULES: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A rule from its JSON, with the server's `id`, validated.
pub fn parse_rule(json: &str, id: &str) -> Result<Rule, Invalid> {
    if json.len() > MAX_RULE_JSON {
        return Err(Invalid(format!("rule_json is longer than {MAX_RULE_JSON} bytes")));
    }
    let mut rule: Rule =
        serde_json::from_str(json).map_err(|e| Invalid(format!("rule_json is not a rule: {e}")))?;
    rule.id = id.to_string();
    validate(&rule).map_err(|e| Invalid(format!("invalid rule: {e}")))?;
    Ok(rule)
}

/// A stored rule; one that no longer parses (a model change) is left out rather than failing the
/// workspace's other rules.
pub fn stored_rule(json: &str, id: &str) -> Option<Rule> {
    match serde_json::from_str::<Rule>(json) {
        Ok(mut rule) => {
            rule.id = id.to_string();
            Some(rule)
        }
        Err(e) => {
            tracing::warn!(rule_id = id, error = %e, "stored rule does not parse; skipped");
            None
        }
    }
}

/// The settings as stored: the business hours JSON ('' for none), the reply limit and its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsInput {
    pub business_hours_json: String,
    pub max_replies: i32,
    pub window_secs: i32,
}

pub fn parse_settings(req: &pb::UpdateAutomationSettingsRequest) -> Result<SettingsInput, Invalid> {
    if !(1..=MAX_REPLIES_LIMIT).contains(&req.max_replies_per_conversation) {
        return Err(Invalid(format!(
            "max_replies_per_conversation must be 1-{MAX_REPLIES_LIMIT}"
        )));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&req.rate_limit_window_seconds) {
        return Err(Invalid(format!(
            "rate_limit_window_seconds must be 1-{MAX_WINDOW_SECS}"
        )));
    }
    let raw = req.business_hours_json.trim();
    let business_hours_json = if raw.is_empty() {
        String::new()
    } else {
        if raw.len() > MAX_HOURS_JSON {
            return Err(Invalid(format!(
                "business_hours_json is longer than {MAX_HOURS_JSON} bytes"
            )));
        }
        let hours: BusinessHours = serde_json::from_str(raw)
            .map_err(|e| Invalid(format!("business_hours_json is not business hours: {e}")))?;
        if let Some(away) = &hours.away_message {
            if away.trim().is_empty() {
                return Err(Invalid("away_message is empty; leave it out for none".into()));
            }
            validate_template(away).map_err(|e| Invalid(format!("away_message: {e}")))?;
        }
        // Stored in its canonical form.
        serde_json::to_string(&hours).map_err(|e| Invalid(e.to_string()))?
    };
    Ok(SettingsInput {
        business_hours_json,
        max_replies: req.max_replies_per_conversation,
        window_secs: req.rate_limit_window_seconds,
    })
}

/// Stored business hours; '' (or, defensively, an unreadable value) is none.
pub fn stored_hours(json: &str) -> Option<BusinessHours> {
    if json.is_empty() {
        return None;
    }
    serde_json::from_str(json)
        .inspect_err(|e| tracing::warn!(error = %e, "stored business hours do not parse; treated as none"))
        .ok()
}

pub fn limits(max_replies: i32, window_secs: i32) -> Limits {
    Limits {
        max_replies_per_conversation: u32::try_from(max_replies.max(0)).unwrap_or(0),
        per: TimeDelta::seconds(i64::from(window_secs.max(1))),
    }
}

pub fn handler_to_proto(handler: HandlerKind) -> pb::HandlerKind {
    match handler {
        HandlerKind::Automation => pb::HandlerKind::Automation,
        HandlerKind::Human => pb::HandlerKind::Human,
    }
}

/// A stored handler; anything but HUMAN (no row, unspecified) is automation, the default.
pub fn handler_from_i32(raw: i32) -> HandlerKind {
    match pb::HandlerKind::try_from(raw) {
        Ok(pb::HandlerKind::Human) => HandlerKind::Human,
        Ok(pb::HandlerKind::Automation | pb::HandlerKind::Unspecified) | Err(_) => HandlerKind::Automation,
    }
}

/// Who handles the conversation after Meta says its thread went to `new_owner`, or None when the
/// event does not move the handler (a request, app roles, or an owner we cannot place).
///
/// `our_app`: this deployment's Meta app id (`META_APP_ID`); `human_app`: the human inbox the
/// thread is passed to on handoff (`THREAD_CONTROL_HUMAN_APP_ID`). Control passed to us means
/// automation; taken by or passed to any other app means a human (of that app) answers.
pub fn handler_after_handover(
    kind: HandoverKind,
    new_owner: &str,
    our_app: Option<&str>,
    human_app: Option<&str>,
) -> Option<HandlerKind> {
    match kind {
        HandoverKind::Pass | HandoverKind::Take => {}
        HandoverKind::Request | HandoverKind::AppRoles | HandoverKind::Unspecified => return None,
    }
    if new_owner.is_empty() {
        return None;
    }
    match our_app {
        Some(ours) if ours == new_owner => Some(HandlerKind::Automation),
        Some(_) => Some(HandlerKind::Human),
        // Without our own id only the human inbox is recognisable.
        None if human_app == Some(new_owner) => Some(HandlerKind::Human),
        None => None,
    }
}

/// Whether a rule's webhook may be sent to `ip`: a public unicast address. Anyone who signs up
/// administers their own workspace and so writes rules; without this, a rule could make inbox
/// POST into the cluster or the cloud's metadata service (server-side request forgery).
pub fn is_public_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 0/8 "this network", 100.64/10 carrier-grade NAT, 198.18/15 benchmarking, 240/4.
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_address(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_unspecified()
                    || v6.is_loopback()
                    || v6.is_multicast()
                    // fc00::/7 unique local, fe80::/10 link local, 2001:db8::/32 documentation.
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || (first == 0x2001 && v6.segments()[1] == 0x0db8))
            }
        },
    }
}

/// The `X-Scifer-Signature` of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`, the timestamp inside the MAC so a captured call cannot be replayed later with
/// another time.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={timestamp},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// A fresh webhook secret: 32 random bytes, hex.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
    Ok(hex::encode(bytes))
}

/// An idempotency key for a send automation makes, bounded in length whatever goes in: the same
/// cause (event, rule, action) always gives the same key, so a redelivered event sends once.
pub fn send_key(parts: &[&str]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, parts.join("\u{1f}").as_bytes());
    format!("auto:{}", hex::encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hours: &str, max: i32, window: i32) -> pb::UpdateAutomationSettingsRequest {
        pb::UpdateAutomationSettingsRequest {
            business_hours_json: hours.into(),
            max_replies_per_conversation: max,
            rate_limit_window_seconds: window,
            rotate_webhook_secret: false,
        }
    }

    #[test]
    fn a_rule_gets_the_server_id_and_is_validated() {
        let json = r#"{"id":"client","name":"hi","enabled":true,"trigger":"message_received",
            "actions":[{"reply":{"text":"Hello {{contact.name|there}}"}}]}"#;
        let rule = parse_rule(json, "srv-1").unwrap();
        assert_eq!(rule.id, "srv-1");
        let err = parse_rule(
            r#"{"id":"","name":"x","enabled":true,"trigger":"message_received","actions":[]}"#,
            "srv",
        )
        .unwrap_err();
        assert!(err.0.contains("at least one action"), "{err}");
        let err = parse_rule(
            r#"{"id":"","name":"x","enabled":true,"trigger":"message_received",
                "actions":[{"reply":{"text":"{{contact.email}}"}}]}"#,
            "srv",
        )
        .unwrap_err();
        assert!(err.0.contains("unknown placeholder"), "{err}");
        assert!(parse_rule("{", "srv").unwrap_err().0.contains("not a rule"));
    }

    #[test]
    fn settings_are_bounded_and_hours_checked() {
        assert!(parse_settings(&settings("", 0, 60)).is_err());
        assert!(parse_settings(&settings("", 5, 0)).is_err());
        assert!(parse_settings(&settings("", 5, MAX_WINDOW_SECS + 1)).is_err());
        assert_eq!(
            parse_settings(&settings(" ", 5, 60)).unwrap().business_hours_json,
            ""
        );
        let hours = r#"{"time_zone":"Europe/Berlin","weekly":[[["09:00:00","17:00:00"]],[],[],[],[],[],[]],
            "away_message":"We are closed, {{contact.name|friend}}"}"#;
        let parsed = parse_settings(&settings(hours, 5, 60)).unwrap();
        assert!(stored_hours(&parsed.business_hours_json).is_some());
        assert!(parse_settings(&settings(r#"{"time_zone":"Mars/Base"}"#, 5, 60)).is_err());
        let bad_away = r#"{"time_zone":"UTC","weekly":[[],[],[],[],[],[],[]],"away_message":"{{nope}}"}"#;
        assert!(
            parse_settings(&settings(bad_away, 5, 60))
                .unwrap_err()
                .0
                .contains("away_message")
        );
    }

    #[test]
    fn handovers_move_the_handler_only_when_the_owner_is_known() {
        use HandoverKind::*;
        assert_eq!(
            handler_after_handover(Pass, "ours", Some("ours"), None),
            Some(HandlerKind::Automation)
        );
        assert_eq!(
            handler_after_handover(Take, "263902037430900", Some("ours"), None),
            Some(HandlerKind::Human)
        );
        assert_eq!(
            handler_after_handover(Pass, "263902037430900", None, Some("263902037430900")),
            Some(HandlerKind::Human)
        );
        assert_eq!(handler_after_handover(Pass, "other", None, None), None);
        assert_eq!(handler_after_handover(Request, "ours", Some("ours"), None), None);
        assert_eq!(handler_after_handover(Pass, "", Some("ours"), None), None);
    }

    #[test]
    fn the_signature_is_an_hmac_of_time_and_body() {
        let sig = signature(b"secret", 1_700_000_000, b"{\"a\":1}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        let mac = hex::encode(hmac::sign(&key, b"1700000000.{\"a\":1}").as_ref());
        assert_eq!(sig, format!("t=1700000000,v1={mac}"));
        assert_ne!(sig, signature(b"other", 1_700_000_000, b"{\"a\":1}"));
    }

    #[test]
    fn send_keys_are_stable_and_short() {
        let a = send_key(&["m1", "r1", "0"]);
        assert_eq!(a, send_key(&["m1", "r1", "0"]));
        assert_ne!(a, send_key(&["m1", "r1", "1"]));
        assert_ne!(send_key(&["a", "bc"]), send_key(&["ab", "c"]));
        assert!(a.len() <= 128);
        assert_eq!(new_secret().unwrap().len(), 64);
    }

    #[test]
    fn unknown_handlers_read_as_automation() {
        assert_eq!(handler_from_i32(0), HandlerKind::Automation);
        assert_eq!(handler_from_i32(2), HandlerKind::Human);
        assert_eq!(handler_from_i32(99), HandlerKind::Automation);
    }
}

#[cfg(test)]
mod address_tests {
    use super::is_public_address;

    #[test]
    fn only_public_unicast_addresses_may_receive_webhooks() {
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:93.184.215.14",
        ] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public_address(internal.parse().unwrap()), "{internal}");
        }
    }
}
