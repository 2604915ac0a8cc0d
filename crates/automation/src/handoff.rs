//! Who handles a conversation: automation answers first and hands off; a human can hand back.

use serde::{Deserialize, Serialize};

use crate::rule::HandlerKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffEvent {
    /// A rule's `HandOffToHuman` action ran.
    RuleHandOff,
    /// [`crate::asks_for_human`] said yes.
    CustomerAskedForHuman,
    /// A `SuggestWithAi` answer was below the rule's threshold ([`accept_ai_reply`] said no).
    LowAiConfidence,
    /// An agent took the conversation (replied or assigned it to themselves).
    AgentTookOver,
    AgentHandedBack,
}

/// The handler after `event`. Every event but a hand-back puts a human in charge, and a
/// hand-back returns the conversation to automation; repeating an event changes nothing.
pub fn next_handler(current: HandlerKind, event: HandoffEvent) -> HandlerKind {
    // Spelled out per state so that a new handler or event has to be decided here.
    match (current, event) {
        (
            HandlerKind::Automation | HandlerKind::Human,
            HandoffEvent::RuleHandOff
            | HandoffEvent::CustomerAskedForHuman
            | HandoffEvent::LowAiConfidence
            | HandoffEvent::AgentTookOver,
        ) => HandlerKind::Human,
        (HandlerKind::Automation | HandlerKind::Human, HandoffEvent::AgentHandedBack) => {
            HandlerKind::Automation
        }
    }
}

/// Whether an AI suggestion with `confidence` may be sent under a rule's `min_confidence`; a NaN
/// on either side never may.
pub fn accept_ai_reply(min_confidence: f32, confidence: f32) -> bool {
    confidence >= min_confidence
}
