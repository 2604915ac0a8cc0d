//! Evaluating rules against one event: which actions to run, and why the others were skipped.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::handoff::{HandoffEvent, next_handler};
use crate::hours::BusinessHours;
use crate::rule::{Action, ChannelKind, Condition, HandlerKind, Rule, Trigger};

/// What happened. "Outside business hours" is not an event of its own: it is a
/// `MessageReceived` while closed, which also fires [`Trigger::OutsideBusinessHours`] rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerEvent {
    /// An inbound customer message (never our own or an agent's outbound one).
    MessageReceived,
    /// A new conversation; when its first message also arrives, feed this event first and then
    /// `MessageReceived`.
    ConversationCreated,
    /// The conversation has had no activity for `minutes`; matches idle rules with exactly this
    /// threshold, so schedule one event per value of [`idle_thresholds`].
    ConversationIdle { minutes: u32 },
}

/// Everything evaluation may look at, borrowed from the caller's conversation state.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    pub trigger: TriggerEvent,
    pub channel: ChannelKind,
    pub text: Option<&'a str>,
    pub labels: &'a [String],
    pub contact_attributes: &'a BTreeMap<String, String>,
    /// Who handles the conversation now. To honour a customer asking for a person, apply
    /// [`crate::asks_for_human`] and [`crate::next_handler`] before evaluating.
    pub handler: HandlerKind,
    pub now: DateTime<Utc>,
    /// `None`: the workspace has no business hours, so it is always open.
    pub business_hours: Option<&'a BusinessHours>,
    /// The message that triggered this was sent by automation (our own echo): never react.
    pub authored_by_automation: bool,
    /// This conversation's automation replies (away messages included), for the rate limit.
    pub recent_automation_replies: &'a [DateTime<Utc>],
    /// When this conversation last got the away message, so it goes out once per closed period.
    pub last_away_message_at: Option<DateTime<Utc>>,
}

/// How many messages automation may send to one conversation within `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_replies_per_conversation: u32,
    pub per: TimeDelta,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_replies_per_conversation: 5,
            per: TimeDelta::minutes(10),
        }
    }
}

/// The outcome of one evaluation, in execution order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<PlannedAction>,
    pub skipped: Vec<Skip>,
}

/// An action to execute. Reply texts are still templates: render them with [`crate::render`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub origin: Origin,
    pub action: Action,
}

/// What produced a planned or skipped action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Rule {
        id: String,
    },
    /// The workspace's away message, not a rule.
    AwayMessage,
}

impl Origin {
    pub fn rule_id(&self) -> Option<&str> {
        match self {
            Origin::Rule { id } => Some(id),
            Origin::AwayMessage => None,
        }
    }
}

/// A rule (with `action: None`) or one of its actions (`Some(index)`) that did not run. Rules
/// whose trigger does not match the event are not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub origin: Origin,
    pub action: Option<usize>,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    Disabled,
    /// Loop protection: the event is automation's own message.
    OwnMessage,
    /// An earlier matching rule had `stop_processing`.
    StoppedBy {
        rule_id: String,
    },
    ConditionNotMet {
        condition: usize,
    },
    /// The condition cannot be evaluated (an invalid regex in an unvalidated rule).
    ConditionInvalid {
        condition: usize,
    },
    /// The conversation reached `Limits::max_replies_per_conversation` within `Limits::per`.
    RateLimited,
    /// A human handles the conversation, so automation does not answer messages.
    HumanHandling,
    /// The away message already went out in this closed period.
    AwayMessageAlreadySent,
}

/// Evaluate `rules` in order against one event.
///
/// - Rules whose trigger matches are considered; disabled ones, and all after a matching rule
///   with `stop_processing`, are skipped. A rule matches when every condition holds.
/// - Loop protection: nothing reacts to automation's own message; a message-sending action
///   (`Reply`, `SuggestWithAi`, the away message) is dropped once the conversation's automation
///   messages within `limits.per` (those already sent plus those planned here) reach the limit.
/// - While a human handles the conversation, message-sending actions of rules triggered by a
///   received message are skipped (automation only answers first); other actions still run, as do
///   replies of idle and creation rules. After a rule hands off, later rules see a human handler.
/// - On a message received while closed, the workspace's away message comes first, once per closed
///   period, whoever handles the conversation (a human agent is not there either).
pub fn evaluate(rules: &[Rule], ctx: &EventContext, limits: &Limits) -> Plan {
    let mut plan = Plan::default();
    let open = ctx.business_hours.is_none_or(|hours| hours.is_open(ctx.now));
    let mut budget = reply_budget(ctx, limits);
    let mut handler = ctx.handler;

    if ctx.trigger == TriggerEvent::MessageReceived
        && !open
        && let Some(hours) = ctx.business_hours
        && let Some(away) = &hours.away_message
    {
        let reason = if ctx.authored_by_automation {
            Some(SkipReason::OwnMessage)
        } else if !away_message_due(hours, ctx) {
            Some(SkipReason::AwayMessageAlreadySent)
        } else if budget == 0 {
            Some(SkipReason::RateLimited)
        } else {
            None
        };
        match reason {
            Some(reason) => plan.skipped.push(Skip {
                origin: Origin::AwayMessage,
                action: None,
                reason,
            }),
            None => {
                budget -= 1;
                plan.actions.push(PlannedAction {
                    origin: Origin::AwayMessage,
                    action: Action::Reply { text: away.clone() },
                });
            }
        }
    }

    let mut stopped_by: Option<&str> = None;
    for rule in rules {
        if !trigger_matches(rule.trigger, ctx.trigger, open) {
            continue;
        }
        let origin = Origin::Rule { id: rule.id.clone() };
        let rule_skip = |reason| Skip {
            origin: origin.clone(),
            action: None,
            reason,
        };
        if !rule.enabled {
            plan.skipped.push(rule_skip(SkipReason::Disabled));
            continue;
        }
        if let Some(rule_id) = stopped_by {
            plan.skipped.push(rule_skip(SkipReason::StoppedBy {
                rule_id: rule_id.to_string(),
            }));
            continue;
        }
        if ctx.authored_by_automation {
            plan.skipped.push(rule_skip(SkipReason::OwnMessage));
            continue;
        }
        if let Some(reason) = failing_condition(&rule.conditions, ctx, handler, open) {
            plan.skipped.push(rule_skip(reason));
            continue;
        }

        let answers_message = matches!(
            rule.trigger,
            Trigger::MessageReceived | Trigger::OutsideBusinessHours
        );
        for (index, action) in rule.actions.iter().enumerate() {
            if action.sends_message() {
                let reason = if answers_message && handler == HandlerKind::Human {
                    Some(SkipReason::HumanHandling)
                } else if budget == 0 {
                    Some(SkipReason::RateLimited)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    plan.skipped.push(Skip {
                        origin: origin.clone(),
                        action: Some(index),
                        reason,
                    });
                    continue;
                }
                budget -= 1;
            }
            plan.actions.push(PlannedAction {
                origin: origin.clone(),
                action: action.clone(),
            });
        }
        if rule
            .actions
            .iter()
            .any(|a| matches!(a, Action::HandOffToHuman { .. }))
        {
            handler = next_handler(handler, HandoffEvent::RuleHandOff);
        }
        if rule.stop_processing {
            stopped_by = Some(&rule.id);
        }
    }
    plan
}

/// The distinct idle thresholds (minutes) of enabled rules, ascending: after each activity the
/// caller schedules a `ConversationIdle` event at each of these.
pub fn idle_thresholds(rules: &[Rule]) -> Vec<u32> {
    let mut minutes: Vec<u32> = rules
        .iter()
        .filter(|rule| rule.enabled)
        .filter_map(|rule| match rule.trigger {
            Trigger::ConversationIdle { minutes } => Some(minutes),
            Trigger::MessageReceived | Trigger::ConversationCreated | Trigger::OutsideBusinessHours => None,
        })
        .collect();
    minutes.sort_unstable();
    minutes.dedup();
    minutes
}

fn trigger_matches(trigger: Trigger, event: TriggerEvent, open: bool) -> bool {
    match (trigger, event) {
        (Trigger::MessageReceived, TriggerEvent::MessageReceived) => true,
        (Trigger::OutsideBusinessHours, TriggerEvent::MessageReceived) => !open,
        (Trigger::ConversationCreated, TriggerEvent::ConversationCreated) => true,
        (Trigger::ConversationIdle { minutes: wanted }, TriggerEvent::ConversationIdle { minutes }) => {
            wanted == minutes
        }
        (
            Trigger::MessageReceived
            | Trigger::OutsideBusinessHours
            | Trigger::ConversationCreated
            | Trigger::ConversationIdle { .. },
            _,
        ) => false,
    }
}

/// How many more messages automation may send to this conversation now.
fn reply_budget(ctx: &EventContext, limits: &Limits) -> u32 {
    let since = ctx.now.checked_sub_signed(limits.per);
    let recent = ctx
        .recent_automation_replies
        .iter()
        // A reply exactly `per` ago has left the window.
        .filter(|sent| since.is_none_or(|since| **sent > since))
        .count();
    let recent = u32::try_from(recent).unwrap_or(u32::MAX);
    limits.max_replies_per_conversation.saturating_sub(recent)
}

/// The away message goes out unless it already did after the current closed period began (or,
/// when the business never opened within the search window, ever).
fn away_message_due(hours: &BusinessHours, ctx: &EventContext) -> bool {
    match ctx.last_away_message_at {
        None => true,
        Some(sent) => hours
            .last_close(ctx.now)
            .is_some_and(|closed_at| sent < closed_at),
    }
}

fn failing_condition(
    conditions: &[Condition],
    ctx: &EventContext,
    handler: HandlerKind,
    open: bool,
) -> Option<SkipReason> {
    conditions
        .iter()
        .enumerate()
        .find_map(|(condition, c)| match check(c, ctx, handler, open) {
            Check::Holds => None,
            Check::Fails => Some(SkipReason::ConditionNotMet { condition }),
            Check::Invalid => Some(SkipReason::ConditionInvalid { condition }),
        })
}

enum Check {
    Holds,
    Fails,
    Invalid,
}

impl From<bool> for Check {
    fn from(holds: bool) -> Self {
        if holds { Check::Holds } else { Check::Fails }
    }
}

fn check(condition: &Condition, ctx: &EventContext, handler: HandlerKind, open: bool) -> Check {
    match condition {
        Condition::Channel(kinds) => kinds.contains(&ctx.channel).into(),
        Condition::TextContains { any, case_sensitive } => ctx
            .text
            .is_some_and(|text| {
                if *case_sensitive {
                    any.iter().any(|needle| text.contains(needle.as_str()))
                } else {
                    let text = text.to_lowercase();
                    any.iter()
                        .any(|needle| text.contains(needle.to_lowercase().as_str()))
                }
            })
            .into(),
        Condition::TextMatches { pattern } => match pattern.regex() {
            Ok(regex) => ctx.text.is_some_and(|text| regex.is_match(text)).into(),
            Err(_) => Check::Invalid,
        },
        Condition::HasLabel(label) => ctx.labels.contains(label).into(),
        Condition::LacksLabel(label) => (!ctx.labels.contains(label)).into(),
        Condition::ContactAttribute { key, equals } => ctx
            .contact_attributes
            .get(key)
            .is_some_and(|value| value == equals)
            .into(),
        Condition::Within { business_hours } => (*business_hours == open).into(),
        Condition::Handler(kind) => (*kind == handler).into(),
    }
}
