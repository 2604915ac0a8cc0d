use scifer_automation::{Action, ConversationStatus, Origin, Trigger};

use crate::{Fixture, at, label, planned, reply, rule};

fn all_actions() -> Vec<Action> {
    vec![
        reply("Hi {{contact.name}}"),
        label("billing"),
        Action::Assign {
            agent_id: Some("agent-7".into()),
            team_id: None,
        },
        Action::Assign {
            agent_id: None,
            team_id: Some("team-support".into()),
        },
        Action::SetStatus(ConversationStatus::Open),
        Action::SetStatus(ConversationStatus::Pending),
        Action::SetStatus(ConversationStatus::Snoozed {
            until: at("2025-06-12T08:00:00Z"),
        }),
        Action::SetStatus(ConversationStatus::Resolved),
        Action::HandOffToHuman {
            reason: "billing question".into(),
        },
        Action::CallWebhook {
            url: "https://hooks.example.com/scifer".into(),
        },
        Action::SuggestWithAi { min_confidence: 0.8 },
    ]
}

#[test]
fn every_action_is_planned_unchanged_in_order_with_its_rule() {
    let actions = all_actions();
    let plan = Fixture::default().evaluate(&[rule(
        "everything",
        Trigger::MessageReceived,
        vec![],
        actions.clone(),
    )]);
    let expected: Vec<(String, Action)> = actions
        .into_iter()
        .map(|a| ("everything".to_string(), a))
        .collect();
    assert_eq!(planned(&plan), expected);
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    assert_eq!(plan.actions[0].origin.rule_id(), Some("everything"));
    assert_eq!(Origin::AwayMessage.rule_id(), None);
}

#[test]
fn only_replies_and_ai_suggestions_send_messages() {
    let sending: Vec<bool> = all_actions().iter().map(Action::sends_message).collect();
    assert_eq!(
        sending,
        vec![
            true, false, false, false, false, false, false, false, false, false, true
        ]
    );
}
