//! Checks a rule before it is stored, so evaluation never meets a rule that cannot work.

use url::{Host, Url};

use crate::rule::{Action, Condition, Rule, Trigger};
use crate::template::{PLACEHOLDER_NAMES, Segment, segments};

/// Longest accepted webhook URL, in bytes.
pub const MAX_WEBHOOK_URL_LEN: usize = 2048;

/// Why a rule was rejected; `condition`/`action` are indexes into the rule's lists, for an editor
/// to point at the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule id is required")]
    EmptyId,
    #[error("a rule needs at least one action")]
    NoActions,
    #[error("idle minutes must be greater than 0")]
    ZeroIdleMinutes,
    #[error("condition {condition}: channel list is empty")]
    EmptyChannelList { condition: usize },
    #[error("condition {condition}: text list is empty or has an empty entry")]
    EmptyText { condition: usize },
    #[error("condition {condition}: pattern is {len} bytes, at most {max} allowed")]
    PatternTooLong {
        condition: usize,
        len: usize,
        max: usize,
    },
    #[error("condition {condition}: invalid pattern: {reason}")]
    InvalidPattern { condition: usize, reason: String },
    #[error("condition {condition}: label is empty")]
    EmptyConditionLabel { condition: usize },
    #[error("condition {condition}: attribute key is empty")]
    EmptyAttributeKey { condition: usize },
    #[error("action {action}: reply text is empty")]
    EmptyReply { action: usize },
    #[error("action {action}: label is empty")]
    EmptyActionLabel { action: usize },
    #[error("action {action}: {source}")]
    Template {
        action: usize,
        #[source]
        source: TemplateError,
    },
    #[error("action {action}: webhook URL must be https, or http to localhost for development")]
    WebhookUrl { action: usize },
    #[error("action {action}: min_confidence must be between 0 and 1")]
    Confidence { action: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{{{name}}}}}; known: contact.name, business.name, agent.name")]
    UnknownPlaceholder { name: String },
    #[error("\"{{{{\" without a closing \"}}}}\"")]
    Unclosed,
}

/// Reject a rule that could not work as written. Returns the first problem found, checking the
/// trigger, then conditions, then actions in order.
pub fn validate(rule: &Rule) -> Result<(), RuleError> {
    if rule.id.trim().is_empty() {
        return Err(RuleError::EmptyId);
    }
    if let Trigger::ConversationIdle { minutes: 0 } = rule.trigger {
        return Err(RuleError::ZeroIdleMinutes);
    }
    for (condition, c) in rule.conditions.iter().enumerate() {
        validate_condition(condition, c)?;
    }
    if rule.actions.is_empty() {
        return Err(RuleError::NoActions);
    }
    for (action, a) in rule.actions.iter().enumerate() {
        validate_action(action, a)?;
    }
    Ok(())
}

/// Check a reply template on its own (the workspace's away message, for one).
pub fn validate_template(template: &str) -> Result<(), TemplateError> {
    let segments = segments(template);
    for segment in &segments {
        match segment {
            Segment::Placeholder { name, .. } if !PLACEHOLDER_NAMES.contains(name) => {
                return Err(TemplateError::UnknownPlaceholder {
                    name: (*name).to_string(),
                });
            }
            Segment::Placeholder { .. } => {}
            // A "{{" left in text means it was never closed: the segmenter closes every pair.
            Segment::Text(text) if text.contains("{{") => return Err(TemplateError::Unclosed),
            Segment::Text(_) => {}
        }
    }
    Ok(())
}

fn validate_condition(condition: usize, c: &Condition) -> Result<(), RuleError> {
    match c {
        Condition::Channel(kinds) if kinds.is_empty() => Err(RuleError::EmptyChannelList { condition }),
        Condition::TextContains { any, .. } if any.is_empty() || any.iter().any(String::is_empty) => {
            Err(RuleError::EmptyText { condition })
        }
        Condition::TextMatches { pattern } => {
            let len = pattern.as_str().len();
            if len > crate::rule::MAX_PATTERN_LEN {
                return Err(RuleError::PatternTooLong {
                    condition,
                    len,
                    max: crate::rule::MAX_PATTERN_LEN,
                });
            }
            pattern
                .regex()
                .map(|_| ())
                .map_err(|reason| RuleError::InvalidPattern {
                    condition,
                    reason: reason.to_string(),
                })
        }
        Condition::HasLabel(label) | Condition::LacksLabel(label) if label.trim().is_empty() => {
            Err(RuleError::EmptyConditionLabel { condition })
        }
        Condition::ContactAttribute { key, .. } if key.trim().is_empty() => {
            Err(RuleError::EmptyAttributeKey { condition })
        }
        Condition::Channel(_)
        | Condition::TextContains { .. }
        | Condition::HasLabel(_)
        | Condition::LacksLabel(_)
        | Condition::ContactAttribute { .. }
        | Condition::Within { .. }
        | Condition::Handler(_) => Ok(()),
    }
}

fn validate_action(action: usize, a: &Action) -> Result<(), RuleError> {
    match a {
        Action::Reply { text } => {
            if text.trim().is_empty() {
                return Err(RuleError::EmptyReply { action });
            }
            validate_template(text).map_err(|source| RuleError::Template { action, source })
        }
        Action::ApplyLabel(label) if label.trim().is_empty() => Err(RuleError::EmptyActionLabel { action }),
        Action::CallWebhook { url } if !webhook_url_allowed(url) => Err(RuleError::WebhookUrl { action }),
        Action::SuggestWithAi { min_confidence } if !(0.0..=1.0).contains(min_confidence) => {
            // NaN fails `contains` too.
            Err(RuleError::Confidence { action })
        }
        Action::ApplyLabel(_)
        | Action::Assign { .. }
        | Action::SetStatus(_)
        | Action::HandOffToHuman { .. }
        | Action::CallWebhook { .. }
        | Action::SuggestWithAi { .. } => Ok(()),
    }
}

/// https anywhere; plain http only to a loopback host (a developer's receiver).
fn webhook_url_allowed(raw: &str) -> bool {
    if raw.len() > MAX_WEBHOOK_URL_LEN {
        return false;
    }
    let Ok(url) = Url::parse(raw) else {
        return false;
    };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => true,
        ("http", Some(Host::Domain(domain))) => domain.eq_ignore_ascii_case("localhost"),
        ("http", Some(Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}
