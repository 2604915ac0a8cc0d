use chrono::TimeDelta;
use scifer_automation::{Limits, Origin, Skip, SkipReason, Trigger, TriggerEvent};

use crate::{Fixture, label, office_hours, planned, reply, rule};

#[test]
fn nothing_reacts_to_automations_own_message() {
    let mut disabled = rule("disabled", Trigger::MessageReceived, vec![], vec![reply("x")]);
    disabled.enabled = false;
    let rules = [
        rule("reply", Trigger::MessageReceived, vec![], vec![reply("echo?")]),
        rule("label", Trigger::MessageReceived, vec![], vec![label("seen")]),
        rule(
            "closed",
            Trigger::OutsideBusinessHours,
            vec![],
            vec![label("late")],
        ),
        disabled,
    ];
    let fixture = Fixture {
        own_message: true,
        hours: Some(office_hours()),
        ..Fixture::closed()
    };
    let plan = fixture.evaluate(&rules);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let reasons: Vec<(Origin, SkipReason)> = plan.skipped.into_iter().map(|s| (s.origin, s.reason)).collect();
    let rule_origin = |id: &str| Origin::Rule { id: id.into() };
    assert_eq!(
        reasons,
        vec![
            (Origin::AwayMessage, SkipReason::OwnMessage),
            (rule_origin("reply"), SkipReason::OwnMessage),
            (rule_origin("label"), SkipReason::OwnMessage),
            (rule_origin("closed"), SkipReason::OwnMessage),
            (rule_origin("disabled"), SkipReason::Disabled),
        ]
    );
}

#[test]
fn the_same_message_from_the_customer_does_trigger() {
    let rules = [rule("reply", Trigger::MessageReceived, vec![], vec![reply("hi")])];
    let plan = Fixture::default().evaluate(&rules);
    assert_eq!(planned(&plan), vec![("reply".to_string(), reply("hi"))]);
}

#[test]
fn the_rate_limit_window_is_half_open_at_its_start() {
    let limits = Limits {
        max_replies_per_conversation: 2,
        per: TimeDelta::minutes(10),
    };
    let now = Fixture::default().now;
    let exactly_per_ago = now - TimeDelta::minutes(10);
    let just_inside = exactly_per_ago + TimeDelta::seconds(1);
    // (earlier replies, how many of two replies may go out)
    let cases = [
        (vec![], 2),
        (vec![exactly_per_ago, exactly_per_ago], 2),
        (vec![exactly_per_ago, just_inside], 1),
        (vec![just_inside, now], 0),
        (vec![now - TimeDelta::hours(5), now - TimeDelta::seconds(1)], 1),
    ];
    let rules = [rule(
        "chatty",
        Trigger::MessageReceived,
        vec![],
        vec![reply("one"), label("kept"), reply("two")],
    )];
    for (recent, allowed) in cases {
        let fixture = Fixture {
            recent_replies: recent.clone(),
            limits,
            ..Fixture::default()
        };
        let plan = fixture.evaluate(&rules);
        let replies = plan.actions.iter().filter(|a| a.action.sends_message()).count();
        assert_eq!(replies, allowed, "recent {recent:?}");
        // Labels are never rate limited.
        assert!(plan.actions.iter().any(|a| a.action == label("kept")));
        let limited: Vec<Option<usize>> = plan
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::RateLimited)
            .map(|s| s.action)
            .collect();
        let expected: Vec<Option<usize>> = match allowed {
            2 => vec![],
            1 => vec![Some(2)],
            _ => vec![Some(0), Some(2)],
        };
        assert_eq!(limited, expected, "recent {recent:?}");
    }
}

#[test]
fn the_budget_is_shared_by_all_rules_of_one_event() {
    let limits = Limits {
        max_replies_per_conversation: 1,
        per: TimeDelta::minutes(10),
    };
    let rules = [
        rule("a", Trigger::MessageReceived, vec![], vec![reply("a")]),
        rule(
            "b",
            Trigger::MessageReceived,
            vec![],
            vec![scifer_automation::Action::SuggestWithAi { min_confidence: 0.5 }],
        ),
    ];
    let plan = Fixture {
        limits,
        ..Fixture::default()
    }
    .evaluate(&rules);
    assert_eq!(planned(&plan), vec![("a".to_string(), reply("a"))]);
    assert_eq!(
        plan.skipped,
        vec![Skip {
            origin: Origin::Rule { id: "b".into() },
            action: Some(0),
            reason: SkipReason::RateLimited,
        }]
    );
}

#[test]
fn idle_and_creation_replies_are_rate_limited_too() {
    let limits = Limits {
        max_replies_per_conversation: 1,
        per: TimeDelta::minutes(10),
    };
    for (trigger, event) in [
        (
            Trigger::ConversationIdle { minutes: 30 },
            TriggerEvent::ConversationIdle { minutes: 30 },
        ),
        (Trigger::ConversationCreated, TriggerEvent::ConversationCreated),
    ] {
        let fixture = Fixture {
            trigger: event,
            limits,
            recent_replies: vec![Fixture::default().now],
            ..Fixture::default()
        };
        let plan = fixture.evaluate(&[rule("r", trigger, vec![], vec![reply("ping")])]);
        assert!(plan.actions.is_empty(), "{trigger:?}");
        assert_eq!(plan.skipped[0].reason, SkipReason::RateLimited);
    }
}

#[test]
fn default_limits_are_five_per_ten_minutes() {
    let limits = Limits::default();
    assert_eq!(limits.max_replies_per_conversation, 5);
    assert_eq!(limits.per, TimeDelta::minutes(10));
}
