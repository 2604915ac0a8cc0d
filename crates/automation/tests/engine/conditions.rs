use std::collections::BTreeMap;

use scifer_automation::{ChannelKind, Condition, HandlerKind, Origin, Pattern, Skip, SkipReason, Trigger};

use crate::{Fixture, office_hours, planned, reply, rule};

fn text_contains(any: &[&str], case_sensitive: bool) -> Condition {
    Condition::TextContains {
        any: any.iter().map(|s| s.to_string()).collect(),
        case_sensitive,
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Does a MessageReceived rule with this one condition fire in this fixture?
fn holds(condition: &Condition, fixture: &Fixture) -> bool {
    let plan = fixture.evaluate(&[rule(
        "r",
        Trigger::MessageReceived,
        vec![condition.clone()],
        vec![reply("ok")],
    )]);
    if plan.actions.is_empty() {
        assert_eq!(
            plan.skipped,
            vec![Skip {
                origin: Origin::Rule { id: "r".into() },
                action: None,
                reason: SkipReason::ConditionNotMet { condition: 0 },
            }]
        );
        false
    } else {
        assert_eq!(planned(&plan), vec![("r".to_string(), reply("ok"))]);
        true
    }
}

fn with_text(text: Option<&str>) -> Fixture {
    Fixture {
        text: text.map(str::to_string),
        ..Fixture::default()
    }
}

#[test]
fn each_condition_holds_exactly_when_it_should() {
    let cases: Vec<(&str, Condition, Fixture, bool)> = vec![
        (
            "channel listed",
            Condition::Channel(vec![ChannelKind::Messenger, ChannelKind::WhatsApp]),
            Fixture::default(),
            true,
        ),
        (
            "channel not listed",
            Condition::Channel(vec![ChannelKind::Messenger, ChannelKind::Instagram]),
            Fixture::default(),
            false,
        ),
        (
            "contains, any of several, case folded",
            text_contains(&["refund", "money back"], false),
            with_text(Some("I want a REFUND now")),
            true,
        ),
        (
            "contains, unicode case folded",
            text_contains(&["rückgabe"], false),
            with_text(Some("Wie läuft die RÜCKGABE?")),
            true,
        ),
        (
            "contains, case sensitive",
            text_contains(&["refund"], true),
            with_text(Some("I want a REFUND")),
            false,
        ),
        (
            "contains, case sensitive exact",
            text_contains(&["REFUND"], true),
            with_text(Some("I want a REFUND")),
            true,
        ),
        (
            "contains, none present",
            text_contains(&["refund"], false),
            with_text(Some("where is my parcel")),
            false,
        ),
        (
            "contains, no text (an image)",
            text_contains(&["refund"], false),
            with_text(None),
            false,
        ),
        (
            "matches",
            Condition::TextMatches {
                pattern: r"(?i)order\s*#?\d{5}\b".into(),
            },
            with_text(Some("my Order #12345 is late")),
            true,
        ),
        (
            "does not match",
            Condition::TextMatches {
                pattern: r"(?i)order\s*#?\d{5}\b".into(),
            },
            with_text(Some("my order 12 is late")),
            false,
        ),
        (
            "matches, no text",
            Condition::TextMatches { pattern: ".*".into() },
            with_text(None),
            false,
        ),
        (
            "has label",
            Condition::HasLabel("vip".into()),
            Fixture {
                labels: vec!["new".into(), "vip".into()],
                ..Fixture::default()
            },
            true,
        ),
        (
            "has label, missing",
            Condition::HasLabel("vip".into()),
            Fixture {
                labels: vec!["new".into()],
                ..Fixture::default()
            },
            false,
        ),
        (
            "lacks label, present",
            Condition::LacksLabel("vip".into()),
            Fixture {
                labels: vec!["vip".into()],
                ..Fixture::default()
            },
            false,
        ),
        (
            "lacks label, absent",
            Condition::LacksLabel("vip".into()),
            Fixture::default(),
            true,
        ),
        (
            "attribute equals",
            Condition::ContactAttribute {
                key: "tier".into(),
                equals: "gold".into(),
            },
            Fixture {
                attributes: attrs(&[("tier", "gold")]),
                ..Fixture::default()
            },
            true,
        ),
        (
            "attribute differs in case",
            Condition::ContactAttribute {
                key: "tier".into(),
                equals: "gold".into(),
            },
            Fixture {
                attributes: attrs(&[("tier", "Gold")]),
                ..Fixture::default()
            },
            false,
        ),
        (
            "attribute missing",
            Condition::ContactAttribute {
                key: "tier".into(),
                equals: "gold".into(),
            },
            Fixture {
                attributes: attrs(&[("plan", "gold")]),
                ..Fixture::default()
            },
            false,
        ),
        (
            "within hours, none configured (always open)",
            Condition::Within { business_hours: true },
            Fixture::default(),
            true,
        ),
        (
            "within hours, open",
            Condition::Within { business_hours: true },
            Fixture {
                hours: Some(office_hours()),
                ..Fixture::default()
            },
            true,
        ),
        (
            "within hours, closed",
            Condition::Within { business_hours: true },
            Fixture::closed(),
            false,
        ),
        (
            "outside hours, closed",
            Condition::Within {
                business_hours: false,
            },
            Fixture::closed(),
            true,
        ),
        (
            "outside hours, open",
            Condition::Within {
                business_hours: false,
            },
            Fixture {
                hours: Some(office_hours()),
                ..Fixture::default()
            },
            false,
        ),
        (
            "handler automation",
            Condition::Handler(HandlerKind::Automation),
            Fixture::default(),
            true,
        ),
        (
            "handler human while automation",
            Condition::Handler(HandlerKind::Human),
            Fixture::default(),
            false,
        ),
    ];
    for (name, condition, fixture, expected) in cases {
        assert_eq!(holds(&condition, &fixture), expected, "{name}");
    }
}

#[test]
fn all_conditions_must_hold_and_the_first_failing_one_is_reported() {
    let fixture = Fixture {
        labels: vec!["vip".into()],
        ..Fixture::default()
    };
    let r = rule(
        "r",
        Trigger::MessageReceived,
        vec![
            Condition::HasLabel("vip".into()),
            Condition::Channel(vec![ChannelKind::Instagram]),
            Condition::HasLabel("missing-too".into()),
        ],
        vec![reply("ok")],
    );
    let plan = fixture.evaluate(&[r]);
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.skipped[0].reason,
        SkipReason::ConditionNotMet { condition: 1 }
    );
    assert_eq!(plan.skipped.len(), 1);
}

#[test]
fn an_invalid_pattern_in_an_unvalidated_rule_never_holds() {
    let r = rule(
        "r",
        Trigger::MessageReceived,
        vec![Condition::TextMatches {
            pattern: "(unclosed".into(),
        }],
        vec![reply("ok")],
    );
    let plan = Fixture::default().evaluate(&[r]);
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.skipped[0].reason,
        SkipReason::ConditionInvalid { condition: 0 }
    );
}

#[test]
fn a_pattern_is_compiled_once_and_kept() {
    let pattern = Pattern::new("a+b");
    let first = pattern.regex().unwrap();
    let second = pattern.regex().unwrap();
    assert!(std::ptr::eq(first, second));
    // A clone keeps the compiled program too.
    let clone = pattern.clone();
    assert!(clone.regex().unwrap().is_match("aab"));
    assert_eq!(pattern.as_str(), "a+b");
}

#[test]
fn rules_with_compiled_patterns_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let r = rule(
        "r",
        Trigger::MessageReceived,
        vec![Condition::TextMatches {
            pattern: "refund".into(),
        }],
        vec![reply("ok")],
    );
    shareable(&r);
    let fixture = with_text(Some("refund please"));
    let fired = std::thread::scope(|s| {
        s.spawn(|| !fixture.evaluate(std::slice::from_ref(&r)).actions.is_empty())
            .join()
            .unwrap()
    });
    assert!(fired);
}
