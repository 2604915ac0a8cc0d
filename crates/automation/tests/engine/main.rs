//! The rules engine through its public API: one binary, a file per feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod actions;
mod asks_for_human;
mod away_message;
mod business_hours;
mod conditions;
mod handoff;
mod human_handling;
mod loop_protection;
mod ordering;
mod render;
mod serde_shape;
mod triggers;
mod validate;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc};
use scifer_automation::{
    Action, BusinessHours, ChannelKind, Condition, EventContext, HandlerKind, Limits, Origin, Plan, Rule,
    Trigger, TriggerEvent, evaluate,
};

/// An instant from RFC 3339 text.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

pub fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

/// Mon..Fri 09:00-17:00 in Europe/Berlin, with an away message.
pub fn office_hours() -> BusinessHours {
    let day = vec![(hm(9, 0), hm(17, 0))];
    BusinessHours {
        time_zone: chrono_tz::Europe::Berlin,
        weekly: [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            vec![],
            vec![],
        ],
        holidays: vec![],
        away_message: Some("We are closed, {{contact.name|there}}.".to_string()),
    }
}

pub fn rule(id: &str, trigger: Trigger, conditions: Vec<Condition>, actions: Vec<Action>) -> Rule {
    Rule {
        id: id.to_string(),
        name: format!("rule {id}"),
        enabled: true,
        trigger,
        conditions,
        actions,
        stop_processing: false,
    }
}

pub fn reply(text: &str) -> Action {
    Action::Reply {
        text: text.to_string(),
    }
}

pub fn label(name: &str) -> Action {
    Action::ApplyLabel(name.to_string())
}

/// The owned state an `EventContext` borrows; defaults to a customer's WhatsApp message on a
/// Wednesday at noon UTC (open in `office_hours`), handled by automation, no business hours.
pub struct Fixture {
    pub trigger: TriggerEvent,
    pub channel: ChannelKind,
    pub text: Option<String>,
    pub labels: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub handler: HandlerKind,
    pub now: DateTime<Utc>,
    pub hours: Option<BusinessHours>,
    pub own_message: bool,
    pub recent_replies: Vec<DateTime<Utc>>,
    pub last_away: Option<DateTime<Utc>>,
    pub limits: Limits,
}

impl Default for Fixture {
    fn default() -> Self {
        Self {
            trigger: TriggerEvent::MessageReceived,
            channel: ChannelKind::WhatsApp,
            text: Some("hello".to_string()),
            labels: vec![],
            attributes: BTreeMap::new(),
            handler: HandlerKind::Automation,
            now: at("2025-06-11T12:00:00Z"),
            hours: None,
            own_message: false,
            recent_replies: vec![],
            last_away: None,
            limits: Limits::default(),
        }
    }
}

impl Fixture {
    /// Saturday noon in Berlin: closed in `office_hours`, here without an away message.
    pub fn closed() -> Self {
        Self {
            now: at("2025-06-14T10:00:00Z"),
            hours: Some(BusinessHours {
                away_message: None,
                ..office_hours()
            }),
            ..Self::default()
        }
    }

    pub fn ctx(&self) -> EventContext<'_> {
        EventContext {
            trigger: self.trigger,
            channel: self.channel,
            text: self.text.as_deref(),
            labels: &self.labels,
            contact_attributes: &self.attributes,
            handler: self.handler,
            now: self.now,
            business_hours: self.hours.as_ref(),
            authored_by_automation: self.own_message,
            recent_automation_replies: &self.recent_replies,
            last_away_message_at: self.last_away,
        }
    }

    pub fn evaluate(&self, rules: &[Rule]) -> Plan {
        evaluate(rules, &self.ctx(), &self.limits)
    }
}

/// The planned actions as (rule id or "away", action), for compact assertions.
pub fn planned(plan: &Plan) -> Vec<(String, Action)> {
    plan.actions
        .iter()
        .map(|p| (origin_name(&p.origin), p.action.clone()))
        .collect()
}

pub fn origin_name(origin: &Origin) -> String {
    match origin {
        Origin::Rule { id } => id.clone(),
        Origin::AwayMessage => "away".to_string(),
    }
}
