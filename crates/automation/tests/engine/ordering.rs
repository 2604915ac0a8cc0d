use scifer_automation::{Condition, Origin, Skip, SkipReason, Trigger};

use crate::{Fixture, label, planned, reply, rule};

fn skip(id: &str, reason: SkipReason) -> Skip {
    Skip {
        origin: Origin::Rule { id: id.into() },
        action: None,
        reason,
    }
}

#[test]
fn rules_run_in_order_and_their_actions_in_order() {
    let rules = [
        rule(
            "first",
            Trigger::MessageReceived,
            vec![],
            vec![label("a"), label("b")],
        ),
        rule("second", Trigger::MessageReceived, vec![], vec![label("c")]),
        rule("third", Trigger::MessageReceived, vec![], vec![label("d")]),
    ];
    let order: Vec<(String, String)> = planned(&Fixture::default().evaluate(&rules))
        .into_iter()
        .map(|(id, action)| (id, format!("{action:?}")))
        .collect();
    let expected: Vec<(String, String)> = [
        ("first", label("a")),
        ("first", label("b")),
        ("second", label("c")),
        ("third", label("d")),
    ]
    .into_iter()
    .map(|(id, action)| (id.to_string(), format!("{action:?}")))
    .collect();
    assert_eq!(order, expected);
}

#[test]
fn stop_processing_skips_later_rules_once_its_rule_matches() {
    let mut stopper = rule("stopper", Trigger::MessageReceived, vec![], vec![reply("first!")]);
    stopper.stop_processing = true;
    let rules = [
        rule("before", Trigger::MessageReceived, vec![], vec![label("seen")]),
        stopper,
        rule("after", Trigger::MessageReceived, vec![], vec![reply("never")]),
        // Another trigger is not this event's business and is not listed.
        rule(
            "idle",
            Trigger::ConversationIdle { minutes: 5 },
            vec![],
            vec![label("x")],
        ),
    ];
    let plan = Fixture::default().evaluate(&rules);
    assert_eq!(
        planned(&plan),
        vec![
            ("before".to_string(), label("seen")),
            ("stopper".to_string(), reply("first!")),
        ]
    );
    assert_eq!(
        plan.skipped,
        vec![skip(
            "after",
            SkipReason::StoppedBy {
                rule_id: "stopper".into()
            }
        )]
    );
}

#[test]
fn stop_processing_of_a_rule_that_does_not_match_stops_nothing() {
    let mut unmatched = rule(
        "unmatched",
        Trigger::MessageReceived,
        vec![Condition::HasLabel("vip".into())],
        vec![reply("vip")],
    );
    unmatched.stop_processing = true;
    let mut disabled = rule("disabled", Trigger::MessageReceived, vec![], vec![reply("off")]);
    disabled.stop_processing = true;
    disabled.enabled = false;
    let rules = [
        unmatched,
        disabled,
        rule(
            "later",
            Trigger::MessageReceived,
            vec![],
            vec![reply("still here")],
        ),
    ];
    let plan = Fixture::default().evaluate(&rules);
    assert_eq!(planned(&plan), vec![("later".to_string(), reply("still here"))]);
    assert_eq!(
        plan.skipped,
        vec![
            skip("unmatched", SkipReason::ConditionNotMet { condition: 0 }),
            skip("disabled", SkipReason::Disabled),
        ]
    );
}
