//! Automation and handoff (issue 5) through the gateway: admins manage rules and settings
//! (audited), agents may read but not edit them, any agent hands a conversation off and back
//! (audited); each call reaches inbox (the recording double) as the caller.

use scifer_proto::{
    gateway::v1::{
        CreateRuleRequest, DeleteRuleRequest, HandBackRequest, HandOffRequest, ListRulesRequest,
        UpdateAutomationSettingsRequest,
    },
    inbox::v1::{self as inbox, HandlerKind},
};
use tonic::Code;

use crate::{
    helpers::{InboxRequest, spawn_app},
    inbox_workflow::{records, team},
};

const RULE: &str = r#"{"id":"","name":"hi","enabled":true,"trigger":"message_received","actions":[{"reply":{"text":"hi"}}]}"#;

fn create(workspace: &str) -> CreateRuleRequest {
    CreateRuleRequest {
        workspace_id: workspace.into(),
        rule: Some(inbox::CreateRuleRequest {
            rule_json: RULE.into(),
            position: None,
        }),
    }
}

#[tokio::test]
async fn admins_manage_rules_and_agents_only_read_them() {
    let app = spawn_app().await;
    let team = team(&app).await;

    let mut agent = app.inbox_client(Some(&team.agent.token));
    let refused = agent.create_rule(create(&team.workspace)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = agent
        .delete_rule(DeleteRuleRequest {
            workspace_id: team.workspace.clone(),
            id: "rule-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = agent
        .update_automation_settings(UpdateAutomationSettingsRequest {
            workspace_id: team.workspace.clone(),
            settings: Some(Default::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 0, "nothing refused reached inbox");
    agent
        .list_rules(ListRulesRequest {
            workspace_id: team.workspace.clone(),
        })
        .await
        .unwrap();

    let mut admin = app.inbox_client(Some(&team.admin.token));
    let created = admin
        .create_rule(create(&team.workspace))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.id, "rule-1");
    let calls = app.inbox.requests();
    let last = calls.last().unwrap();
    assert_eq!(
        last.request,
        InboxRequest::CreateRule(inbox::CreateRuleRequest {
            rule_json: RULE.into(),
            position: None,
        })
    );
    assert_eq!(
        last.metadata.get("x-scifer-actor").unwrap(),
        format!("user:{}", team.admin.user_id).as_str()
    );
    admin
        .update_automation_settings(UpdateAutomationSettingsRequest {
            workspace_id: team.workspace.clone(),
            settings: Some(inbox::UpdateAutomationSettingsRequest {
                max_replies_per_conversation: 3,
                rate_limit_window_seconds: 60,
                rotate_webhook_secret: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    let audited = records(&app, &team.workspace, "automation.rule_created", 1).await;
    assert_eq!(audited[0].actor_id, team.admin.user_id);
    assert_eq!(audited[0].target_id, "rule-1");
    let audited = records(&app, &team.workspace, "automation.settings_updated", 1).await;
    assert_eq!(audited[0].detail, "webhook secret rotated");
}

#[tokio::test]
async fn agents_hand_off_and_back_as_themselves_and_viewers_may_not() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let handoff = |ws: &str| HandOffRequest {
        workspace_id: ws.into(),
        handoff: Some(inbox::HandOffRequest {
            conversation_id: "c1".into(),
            reason: "billing".into(),
        }),
    };

    let mut viewer = app.inbox_client(Some(&team.viewer.token));
    let refused = viewer.hand_off(handoff(&team.workspace)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 0);

    let mut agent = app.inbox_client(Some(&team.agent.token));
    let off = agent
        .hand_off(handoff(&team.workspace))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.handler, HandlerKind::Human as i32);
    let back = agent
        .hand_back(HandBackRequest {
            workspace_id: team.workspace.clone(),
            conversation_id: "c1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.handler, HandlerKind::Automation as i32);
    let calls = app.inbox.requests();
    assert_eq!(
        calls[0].request,
        InboxRequest::HandOff(inbox::HandOffRequest {
            conversation_id: "c1".into(),
            reason: "billing".into(),
        })
    );
    assert_eq!(
        calls[1].metadata.get("x-scifer-actor").unwrap(),
        format!("user:{}", team.agent.user_id).as_str()
    );
    let missing = agent
        .hand_back(HandBackRequest {
            workspace_id: team.workspace.clone(),
            conversation_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let off = records(&app, &team.workspace, "conversation.handed_off", 1).await;
    assert_eq!(
        (
            off[0].actor_id.as_str(),
            off[0].target_id.as_str(),
            off[0].detail.as_str()
        ),
        (team.agent.user_id.as_str(), "c1", "billing")
    );
    records(&app, &team.workspace, "conversation.handed_back", 1).await;
}
