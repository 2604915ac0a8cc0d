//! Automation and handoff (issue 5): the workspace's rules ([`rules`]) run by [`runner`] after
//! customer messages are committed and for idle conversations, through the same send path, gate
//! and workflow code as the team; who handles a conversation ([`handoff`]), with Meta's thread
//! control on Messenger/Instagram and its routing events ([`routing`]) keeping the state true;
//! signed webhooks ([`webhook`]). The rules engine itself is `scifer_automation` (pure).

pub mod domain;
pub mod handoff;
pub mod routing;
pub mod rules;
pub mod runner;
pub mod state;
pub mod webhook;

pub use handoff::{Handoff, Routing};
pub use routing::RoutingConsumer;
pub use rules::Rules;
pub use runner::{AutomationConsumer, Runner};

/// The durable consumer of the INBOX stream that runs the rules.
pub const AUTOMATION_CONSUMER: &str = "inbox-automation";
/// The durable consumer of the META stream's handover events.
pub const ROUTING_CONSUMER: &str = "inbox-routing";
