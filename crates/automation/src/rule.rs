//! The rule model: what the inbox stores as JSON and the gateway API carries.
//!
//! The serde shape is pinned by a test (`serde_json_shape_is_pinned`): enums are externally tagged
//! in snake_case, so a unit variant is a string (`"message_received"`) and a variant with data is a
//! one-key object (`{"conversation_idle": {"minutes": 30}}`). Changing a name here changes stored
//! rules; add a variant rather than renaming one.

use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One automation rule: when `trigger` happens and every condition holds, plan `actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    /// All must hold; an empty list always holds.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    /// When this rule matches, later rules are not evaluated for this event.
    #[serde(default)]
    pub stop_processing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Every inbound customer message, open or closed.
    MessageReceived,
    ConversationCreated,
    /// Fires when the caller reports the conversation idle for exactly `minutes` (see
    /// [`crate::idle_thresholds`] for what to schedule).
    ConversationIdle {
        minutes: u32,
    },
    /// An inbound customer message while the workspace's business hours say closed. Never fires
    /// when the workspace has no business hours (that means always open).
    OutsideBusinessHours,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The conversation's channel is one of these.
    Channel(Vec<ChannelKind>),
    /// The message text contains any of these substrings. Case-insensitive matching folds with
    /// Unicode lowercase. An event without text (an image, a reaction) never matches.
    TextContains {
        any: Vec<String>,
        case_sensitive: bool,
    },
    /// The message text matches this regular expression (the `regex` crate's syntax: linear time,
    /// no backreferences; use `(?i)` for case-insensitive).
    TextMatches {
        pattern: Pattern,
    },
    HasLabel(String),
    LacksLabel(String),
    /// The contact attribute exists and equals this value exactly.
    ContactAttribute {
        key: String,
        equals: String,
    },
    /// `business_hours: true` holds while open, `false` while closed. A workspace without business
    /// hours is always open.
    Within {
        business_hours: bool,
    },
    /// Who handles the conversation when the event is evaluated.
    Handler(HandlerKind),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send this text; placeholders (`{{contact.name}}`, `{{business.name}}`, `{{agent.name}}`,
    /// each with an optional `|fallback`) are filled by [`crate::render`] at send time.
    Reply {
        text: String,
    },
    ApplyLabel(String),
    /// Both `None` unassigns.
    Assign {
        agent_id: Option<String>,
        team_id: Option<String>,
    },
    SetStatus(ConversationStatus),
    HandOffToHuman {
        reason: String,
    },
    /// POST the event to this URL (https, or http to a loopback host for development).
    CallWebhook {
        url: String,
    },
    /// Ask the AI for a reply; send it only if its confidence is at least `min_confidence`
    /// ([`crate::accept_ai_reply`]), otherwise hand off with [`crate::HandoffEvent::LowAiConfidence`].
    SuggestWithAi {
        #[serde(serialize_with = "serialize_shortest")]
        min_confidence: f32,
    },
}

/// Writes an `f32` as the decimal it was written as (0.8, not 0.800000011920929, which a plain
/// widening to f64 gives, e.g. in `serde_json::Value` and so in a JSON database column).
fn serialize_shortest<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    let decimal = value.to_string().parse().unwrap_or(f64::from(*value));
    serializer.serialize_f64(decimal)
}

impl Action {
    /// Whether executing this action may send a message to the customer (what loop protection
    /// and the rate limit count).
    pub fn sends_message(&self) -> bool {
        match self {
            Action::Reply { .. } | Action::SuggestWithAi { .. } => true,
            Action::ApplyLabel(_)
            | Action::Assign { .. }
            | Action::SetStatus(_)
            | Action::HandOffToHuman { .. }
            | Action::CallWebhook { .. } => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Pending,
    Snoozed { until: DateTime<Utc> },
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Messenger,
    Instagram,
    // serde's snake_case would spell this "whats_app".
    #[serde(rename = "whatsapp")]
    WhatsApp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerKind {
    Automation,
    Human,
}

/// Longest accepted regex source, in bytes.
pub const MAX_PATTERN_LEN: usize = 512;
/// Compiled-program budget handed to the regex crate, so one rule cannot take megabytes.
pub(crate) const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A regex source, compiled on first use and kept with the rule, so evaluating the same rules
/// for every message does not recompile. Serializes as its source string. An invalid source
/// still deserializes (a stored rule must stay loadable after limits change); [`crate::validate`]
/// rejects it and evaluation treats it as a condition that cannot hold.
pub struct Pattern {
    source: String,
    compiled: OnceLock<Result<Regex, String>>,
}

impl Pattern {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            compiled: OnceLock::new(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled regex, or why it does not compile (too long, bad syntax, over the size limit).
    pub fn regex(&self) -> Result<&Regex, &str> {
        self.compiled
            .get_or_init(|| compile(&self.source))
            .as_ref()
            .map_err(String::as_str)
    }
}

fn compile(source: &str) -> Result<Regex, String> {
    if source.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "pattern is {} bytes, at most {MAX_PATTERN_LEN} allowed",
            source.len()
        ));
    }
    regex::RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

impl Clone for Pattern {
    fn clone(&self) -> Self {
        Self {
            source: self.source.clone(),
            compiled: self.compiled.clone(),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl From<&str> for Pattern {
    fn from(source: &str) -> Self {
        Self::new(source)
    }
}

impl From<String> for Pattern {
    fn from(source: String) -> Self {
        Self::new(source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}
