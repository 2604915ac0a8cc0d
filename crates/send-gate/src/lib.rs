//! The one send gate of the inbox: decides, before anything reaches Meta, whether a message may
//! be sent to a conversation and how. Human agents, automation rules and AI all go through
//! [`decide`], so none of them can send outside Meta's windows, tag a bot reply HUMAN_AGENT, or
//! believe a refused message went out.
//!
//! Pure: no I/O and no clock; the caller passes `now` and what it knows about the conversation.
//! [`explain_send_failure`] covers the other direction: Meta's send errors, explained.

mod failure;
mod gate;

pub use failure::{FailureReason, explain_send_failure};
pub use gate::{
    Allowed, Alternative, AuthorKind, ChannelKind, Content, Conversation, Decision, Intent, MessagingType,
    Policy, Refusal, RefusalReason, SendRequest, decide, free_text_status,
};
