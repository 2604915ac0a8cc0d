//! The automation rules engine of the shared inbox, pure and without I/O.
//!
//! The inbox service stores [`Rule`]s (as JSON), builds an [`EventContext`] for each event
//! (a message received, a conversation created, a conversation idle), calls [`evaluate`], and
//! executes the returned [`Plan`] through its send gate, rendering reply templates with
//! [`render`]. Before evaluating an inbound message it checks [`asks_for_human`] and moves the
//! conversation with [`next_handler`], so that automation stops answering a customer who asked
//! for a person. [`validate`] runs before a rule is stored.

mod evaluate;
mod handoff;
mod hours;
mod human;
mod rule;
mod template;
mod validate;

pub use evaluate::{
    EventContext, Limits, Origin, Plan, PlannedAction, Skip, SkipReason, TriggerEvent, evaluate,
    idle_thresholds,
};
pub use handoff::{HandoffEvent, accept_ai_reply, next_handler};
pub use hours::BusinessHours;
pub use human::asks_for_human;
pub use rule::{
    Action, ChannelKind, Condition, ConversationStatus, HandlerKind, MAX_PATTERN_LEN, Pattern, Rule, Trigger,
};
pub use template::{AGENT_NAME, BUSINESS_NAME, CONTACT_NAME, PLACEHOLDER_NAMES, Placeholders, render};
pub use validate::{MAX_WEBHOOK_URL_LEN, RuleError, TemplateError, validate, validate_template};
