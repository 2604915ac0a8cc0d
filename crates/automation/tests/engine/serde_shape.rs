use scifer_automation::{
    Action, ChannelKind, Condition, ConversationStatus, HandlerKind, Origin, Plan, PlannedAction, Rule, Skip,
    SkipReason, Trigger,
};
use serde_json::json;

use crate::at;

/// A rule using every condition and action variant.
fn full_rule() -> Rule {
    Rule {
        id: "rule-1".into(),
        name: "VIP refunds".into(),
        enabled: true,
        trigger: Trigger::MessageReceived,
        conditions: vec![
            Condition::Channel(vec![
                ChannelKind::Messenger,
                ChannelKind::Instagram,
                ChannelKind::WhatsApp,
            ]),
            Condition::TextContains {
                any: vec!["refund".into(), "Rückgabe".into()],
                case_sensitive: false,
            },
            Condition::TextMatches {
                pattern: r"(?i)order\s*\d+".into(),
            },
            Condition::HasLabel("vip".into()),
            Condition::LacksLabel("spam".into()),
            Condition::ContactAttribute {
                key: "tier".into(),
                equals: "gold".into(),
            },
            Condition::Within { business_hours: true },
            Condition::Handler(HandlerKind::Automation),
        ],
        actions: vec![
            Action::Reply {
                text: "Hi {{contact.name}}".into(),
            },
            Action::ApplyLabel("refund".into()),
            Action::Assign {
                agent_id: None,
                team_id: Some("billing".into()),
            },
            Action::SetStatus(ConversationStatus::Pending),
            Action::SetStatus(ConversationStatus::Snoozed {
                until: at("2025-06-12T08:00:00Z"),
            }),
            Action::HandOffToHuman {
                reason: "refund".into(),
            },
            Action::CallWebhook {
                url: "https://hooks.example.com/r".into(),
            },
            Action::SuggestWithAi { min_confidence: 0.8 },
        ],
        stop_processing: true,
    }
}

/// The stored JSON form of rules. Changing it breaks every stored rule: add, don't rename.
fn pinned_json() -> serde_json::Value {
    json!({
        "id": "rule-1",
        "name": "VIP refunds",
        "enabled": true,
        "trigger": "message_received",
        "conditions": [
            {"channel": ["messenger", "instagram", "whatsapp"]},
            {"text_contains": {"any": ["refund", "Rückgabe"], "case_sensitive": false}},
            {"text_matches": {"pattern": "(?i)order\\s*\\d+"}},
            {"has_label": "vip"},
            {"lacks_label": "spam"},
            {"contact_attribute": {"key": "tier", "equals": "gold"}},
            {"within": {"business_hours": true}},
            {"handler": "automation"}
        ],
        "actions": [
            {"reply": {"text": "Hi {{contact.name}}"}},
            {"apply_label": "refund"},
            {"assign": {"agent_id": null, "team_id": "billing"}},
            {"set_status": "pending"},
            {"set_status": {"snoozed": {"until": "2025-06-12T08:00:00Z"}}},
            {"hand_off_to_human": {"reason": "refund"}},
            {"call_webhook": {"url": "https://hooks.example.com/r"}},
            {"suggest_with_ai": {"min_confidence": 0.8}}
        ],
        "stop_processing": true
    })
}

#[test]
fn serde_json_shape_is_pinned() {
    assert_eq!(serde_json::to_value(full_rule()).unwrap(), pinned_json());
    let parsed: Rule = serde_json::from_value(pinned_json()).unwrap();
    assert_eq!(parsed, full_rule());
}

#[test]
fn every_trigger_round_trips() {
    let cases = [
        (Trigger::MessageReceived, json!("message_received")),
        (Trigger::ConversationCreated, json!("conversation_created")),
        (
            Trigger::ConversationIdle { minutes: 45 },
            json!({"conversation_idle": {"minutes": 45}}),
        ),
        (Trigger::OutsideBusinessHours, json!("outside_business_hours")),
    ];
    for (trigger, expected) in cases {
        assert_eq!(serde_json::to_value(trigger).unwrap(), expected);
        assert_eq!(serde_json::from_value::<Trigger>(expected).unwrap(), trigger);
    }
}

#[test]
fn conditions_and_stop_processing_may_be_left_out() {
    let rule: Rule = serde_json::from_value(json!({
        "id": "r", "name": "n", "enabled": false,
        "trigger": "conversation_created",
        "actions": [{"apply_label": "new"}]
    }))
    .unwrap();
    assert!(rule.conditions.is_empty());
    assert!(!rule.stop_processing);
}

#[test]
fn a_stored_rule_with_an_invalid_pattern_still_loads() {
    let rule: Rule = serde_json::from_value(json!({
        "id": "r", "name": "n", "enabled": true,
        "trigger": "message_received",
        "conditions": [{"text_matches": {"pattern": "(unclosed"}}],
        "actions": [{"apply_label": "x"}]
    }))
    .unwrap();
    assert!(scifer_automation::validate(&rule).is_err());
}

#[test]
fn plans_serialize_with_tagged_origins_and_reasons() {
    let plan = Plan {
        actions: vec![PlannedAction {
            origin: Origin::AwayMessage,
            action: Action::ApplyLabel("x".into()),
        }],
        skipped: vec![Skip {
            origin: Origin::Rule { id: "r".into() },
            action: Some(0),
            reason: SkipReason::StoppedBy { rule_id: "s".into() },
        }],
    };
    let expected = json!({
        "actions": [{"origin": {"kind": "away_message"}, "action": {"apply_label": "x"}}],
        "skipped": [{
            "origin": {"kind": "rule", "id": "r"},
            "action": 0,
            "reason": {"kind": "stopped_by", "rule_id": "s"}
        }]
    });
    assert_eq!(serde_json::to_value(&plan).unwrap(), expected);
    assert_eq!(serde_json::from_value::<Plan>(expected).unwrap(), plan);
}
