use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// The messaging channel a reply goes out on; it sets the reply length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Messenger,
    Instagram,
    WhatsApp,
}

/// How a channel measures its text limit. Meta documents Messenger and WhatsApp in characters
/// without saying which; UTF-16 code units count at least as many as code points, so they are the
/// safe reading. Meta's Instagram page says both "less than 1000 characters" and "1000 bytes or
/// less"; bytes is the stricter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    Utf16Units,
    Utf8Bytes,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::WhatsApp => "whatsapp",
        }
    }

    /// The longest text message the channel accepts: UTF-16 code units for Messenger and WhatsApp,
    /// UTF-8 bytes for Instagram.
    pub fn max_reply_len(self) -> usize {
        match self {
            Channel::Messenger => 2000,
            Channel::Instagram => 1000,
            Channel::WhatsApp => 4096,
        }
    }

    pub(crate) fn limit_measure(self) -> Measure {
        match self {
            Channel::Messenger | Channel::WhatsApp => Measure::Utf16Units,
            Channel::Instagram => Measure::Utf8Bytes,
        }
    }

    pub(crate) fn display_name(self) -> &'static str {
        match self {
            Channel::Messenger => "Facebook Messenger",
            Channel::Instagram => "Instagram Direct",
            Channel::WhatsApp => "WhatsApp",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name other than `messenger`, `instagram` or `whatsapp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "messenger" => Ok(Channel::Messenger),
            "instagram" => Ok(Channel::Instagram),
            "whatsapp" => Ok(Channel::WhatsApp),
            _ => Err(UnknownChannel(s.to_owned())),
        }
    }
}

/// Who wrote a message in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Customer,
    Agent,
    Automation,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContextMessage {
    pub speaker: Speaker,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A workspace's saved reply, e.g. `/hours` → "We're open 9–5, Monday to Friday."
#[derive(Debug, Clone, PartialEq)]
pub struct CannedResponse {
    pub shortcut: String,
    pub text: String,
}

/// Everything the provider sees about one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestionRequest {
    pub channel: Channel,
    pub business_name: String,
    /// The customer's profile name. Customer-controlled, so the prompt quotes it as data.
    pub contact_name: Option<String>,
    /// The conversation in any order; the prompt sorts by `at` and keeps the newest
    /// `max_context_messages`.
    pub messages: Vec<ContextMessage>,
    /// The workspace's canned responses, most relevant first (the prompt keeps the first
    /// 50).
    pub canned: Vec<CannedResponse>,
    /// A language to fall back on (e.g. `"de"` or `"German"`) when the customer's is unclear.
    pub language_hint: Option<String>,
}

/// A draft reply for the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Trimmed, and cut to the channel's limit (see `truncated`).
    pub text: String,
    /// 0..=1: how sure the model is that this reply resolves the customer's message without a
    /// human; used for handoff on low confidence. 0 when the model ignored the answer format.
    pub confidence: f32,
    /// The model thinks the customer asks for a person.
    pub wants_human: bool,
    /// The model that answered, as the provider reports it.
    pub model: String,
    pub usage_tokens: Option<u32>,
    /// The model's reply was longer than the channel allows and was cut; automation should not
    /// send such a draft unreviewed.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_from_their_names() {
        for c in [Channel::Messenger, Channel::Instagram, Channel::WhatsApp] {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
        assert_eq!(" WhatsApp ".parse::<Channel>(), Ok(Channel::WhatsApp));
        assert_eq!("sms".parse::<Channel>(), Err(UnknownChannel("sms".into())));
    }
}
