use scifer_automation::{Action, Condition, HandlerKind, Origin, Skip, SkipReason, Trigger, TriggerEvent};

use crate::{Fixture, label, planned, reply, rule};

fn human() -> Fixture {
    Fixture {
        handler: HandlerKind::Human,
        ..Fixture::default()
    }
}

#[test]
fn while_a_human_handles_it_message_rules_do_not_answer_but_still_organise() {
    let assign = Action::Assign {
        agent_id: None,
        team_id: Some("billing".into()),
    };
    let suggest = Action::SuggestWithAi { min_confidence: 0.7 };
    let rules = [rule(
        "r",
        Trigger::MessageReceived,
        vec![],
        vec![reply("hi"), label("billing"), assign.clone(), suggest],
    )];
    let plan = human().evaluate(&rules);
    assert_eq!(
        planned(&plan),
        vec![("r".to_string(), label("billing")), ("r".to_string(), assign)]
    );
    let skipped: Vec<(Option<usize>, SkipReason)> =
        plan.skipped.into_iter().map(|s| (s.action, s.reason)).collect();
    assert_eq!(
        skipped,
        vec![
            (Some(0), SkipReason::HumanHandling),
            (Some(3), SkipReason::HumanHandling)
        ]
    );
}

#[test]
fn while_a_human_handles_it_closed_hours_rules_do_not_answer_either() {
    let fixture = Fixture {
        handler: HandlerKind::Human,
        ..Fixture::closed()
    };
    let plan = fixture.evaluate(&[rule(
        "closed",
        Trigger::OutsideBusinessHours,
        vec![],
        vec![reply("we are closed")],
    )]);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.skipped[0].reason, SkipReason::HumanHandling);
}

#[test]
fn while_a_human_handles_it_idle_rules_still_reply() {
    let fixture = Fixture {
        trigger: TriggerEvent::ConversationIdle { minutes: 60 },
        ..human()
    };
    let plan = fixture.evaluate(&[rule(
        "nudge",
        Trigger::ConversationIdle { minutes: 60 },
        vec![],
        vec![reply("still there?")],
    )]);
    assert_eq!(planned(&plan), vec![("nudge".to_string(), reply("still there?"))]);
}

#[test]
fn after_a_rule_hands_off_later_rules_see_a_human() {
    let rules = [
        rule(
            "handoff",
            Trigger::MessageReceived,
            vec![],
            vec![
                reply("Connecting you to a person"),
                Action::HandOffToHuman {
                    reason: "complaint".into(),
                },
            ],
        ),
        rule(
            "greeting",
            Trigger::MessageReceived,
            vec![],
            vec![reply("Hello!")],
        ),
        rule(
            "bot-only",
            Trigger::MessageReceived,
            vec![Condition::Handler(HandlerKind::Automation)],
            vec![label("bot")],
        ),
        rule(
            "human-only",
            Trigger::MessageReceived,
            vec![Condition::Handler(HandlerKind::Human)],
            vec![label("escalated")],
        ),
    ];
    let plan = Fixture::default().evaluate(&rules);
    assert_eq!(
        planned(&plan),
        vec![
            ("handoff".to_string(), reply("Connecting you to a person")),
            (
                "handoff".to_string(),
                Action::HandOffToHuman {
                    reason: "complaint".into()
                }
            ),
            ("human-only".to_string(), label("escalated")),
        ]
    );
    assert_eq!(
        plan.skipped,
        vec![
            Skip {
                origin: Origin::Rule {
                    id: "greeting".into()
                },
                action: Some(0),
                reason: SkipReason::HumanHandling,
            },
            Skip {
                origin: Origin::Rule {
                    id: "bot-only".into()
                },
                action: None,
                reason: SkipReason::ConditionNotMet { condition: 0 },
            },
        ]
    );
}
