use scifer_automation::{
    Action, ChannelKind, Condition, MAX_PATTERN_LEN, Rule, RuleError, TemplateError, Trigger, validate,
    validate_template,
};

use crate::{label, reply, rule};

fn valid() -> Rule {
    rule(
        "r1",
        Trigger::MessageReceived,
        vec![
            Condition::Channel(vec![ChannelKind::Instagram]),
            Condition::TextMatches {
                pattern: r"(?i)\border\b".into(),
            },
        ],
        vec![
            reply("Hi {{contact.name|there}}, this is {{ business.name }}"),
            label("orders"),
        ],
    )
}

fn with_condition(condition: Condition) -> Rule {
    Rule {
        conditions: vec![Condition::HasLabel("ok".into()), condition],
        ..valid()
    }
}

fn with_action(action: Action) -> Rule {
    Rule {
        actions: vec![label("ok"), action],
        ..valid()
    }
}

#[test]
fn a_well_formed_rule_is_valid() {
    assert_eq!(validate(&valid()), Ok(()));
}

#[test]
fn each_problem_is_reported_with_where_it_is() {
    let cases: Vec<(&str, Rule, RuleError)> = vec![
        (
            "empty id",
            Rule {
                id: " ".into(),
                ..valid()
            },
            RuleError::EmptyId,
        ),
        (
            "no actions",
            Rule {
                actions: vec![],
                ..valid()
            },
            RuleError::NoActions,
        ),
        (
            "idle 0",
            Rule {
                trigger: Trigger::ConversationIdle { minutes: 0 },
                ..valid()
            },
            RuleError::ZeroIdleMinutes,
        ),
        (
            "no channels",
            with_condition(Condition::Channel(vec![])),
            RuleError::EmptyChannelList { condition: 1 },
        ),
        (
            "no texts",
            with_condition(Condition::TextContains {
                any: vec![],
                case_sensitive: false,
            }),
            RuleError::EmptyText { condition: 1 },
        ),
        (
            "an empty text matches everything",
            with_condition(Condition::TextContains {
                any: vec!["refund".into(), String::new()],
                case_sensitive: false,
            }),
            RuleError::EmptyText { condition: 1 },
        ),
        (
            "pattern too long",
            with_condition(Condition::TextMatches {
                pattern: "a".repeat(MAX_PATTERN_LEN + 1).into(),
            }),
            RuleError::PatternTooLong {
                condition: 1,
                len: MAX_PATTERN_LEN + 1,
                max: MAX_PATTERN_LEN,
            },
        ),
        (
            "empty has-label",
            with_condition(Condition::HasLabel(String::new())),
            RuleError::EmptyConditionLabel { condition: 1 },
        ),
        (
            "empty lacks-label",
            with_condition(Condition::LacksLabel(String::new())),
            RuleError::EmptyConditionLabel { condition: 1 },
        ),
        (
            "empty attribute key",
            with_condition(Condition::ContactAttribute {
                key: String::new(),
                equals: "x".into(),
            }),
            RuleError::EmptyAttributeKey { condition: 1 },
        ),
        (
            "empty reply",
            with_action(reply("  ")),
            RuleError::EmptyReply { action: 1 },
        ),
        (
            "unknown placeholder",
            with_action(reply("Hi {{contact.email}}")),
            RuleError::Template {
                action: 1,
                source: TemplateError::UnknownPlaceholder {
                    name: "contact.email".into(),
                },
            },
        ),
        (
            "unclosed placeholder",
            with_action(reply("Hi {{contact.name")),
            RuleError::Template {
                action: 1,
                source: TemplateError::Unclosed,
            },
        ),
        (
            "empty label",
            with_action(label("")),
            RuleError::EmptyActionLabel { action: 1 },
        ),
        (
            "confidence above 1",
            with_action(Action::SuggestWithAi { min_confidence: 1.01 }),
            RuleError::Confidence { action: 1 },
        ),
        (
            "confidence below 0",
            with_action(Action::SuggestWithAi { min_confidence: -0.1 }),
            RuleError::Confidence { action: 1 },
        ),
        (
            "confidence NaN",
            with_action(Action::SuggestWithAi {
                min_confidence: f32::NAN,
            }),
            RuleError::Confidence { action: 1 },
        ),
    ];
    for (name, rule, expected) in cases {
        assert_eq!(validate(&rule), Err(expected), "{name}");
    }
}

#[test]
fn bad_and_oversized_patterns_are_rejected() {
    for (pattern, reason_contains) in [
        ("(unclosed", "unclosed"),
        (r"\p{NotAClass}", "Unicode"),
        // Well under the length limit, far over the compiled size limit.
        (r"\w{1000}\w{1000}", "size limit"),
    ] {
        let result = validate(&with_condition(Condition::TextMatches {
            pattern: pattern.into(),
        }));
        match result {
            Err(RuleError::InvalidPattern { condition: 1, reason }) => {
                assert!(reason.contains(reason_contains), "{pattern}: {reason}")
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
}

#[test]
fn webhooks_need_https_except_to_localhost() {
    let cases = [
        ("https://hooks.example.com/scifer?x=1", true),
        ("https://10.1.2.3:8443/hook", true),
        ("http://localhost:8080/hook", true),
        ("http://LOCALHOST/hook", true),
        ("http://127.0.0.1:3000/", true),
        ("http://[::1]:3000/", true),
        ("http://hooks.example.com/hook", false),
        ("http://localhost.example.com/hook", false),
        ("http://10.0.0.1/hook", false),
        ("ftp://hooks.example.com/", false),
        ("hooks.example.com/hook", false),
        ("", false),
        ("https://", false),
    ];
    for (url, ok) in cases {
        let result = validate(&with_action(Action::CallWebhook { url: url.into() }));
        let expected = if ok {
            Ok(())
        } else {
            Err(RuleError::WebhookUrl { action: 1 })
        };
        assert_eq!(result, expected, "{url}");
    }
    let long = format!("https://example.com/{}", "a".repeat(3000));
    assert!(validate(&with_action(Action::CallWebhook { url: long })).is_err());
}

#[test]
fn templates_are_checked_on_their_own() {
    assert_eq!(validate_template("Closed. Back at 9, {{contact.name}}!"), Ok(()));
    assert_eq!(validate_template("no placeholders"), Ok(()));
    assert_eq!(
        validate_template("{{ agent.name | our team }} will answer"),
        Ok(())
    );
    assert_eq!(
        validate_template("{{}}"),
        Err(TemplateError::UnknownPlaceholder { name: String::new() })
    );
    assert_eq!(validate_template("oops {{"), Err(TemplateError::Unclosed));
    assert_eq!(
        validate_template("{{ {{business.name}}"),
        Err(TemplateError::Unclosed)
    );
}
