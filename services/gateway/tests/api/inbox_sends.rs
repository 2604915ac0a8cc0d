//! SendMessage, CheckSend and RetryMessage: forwarded to inbox (the recording double here; the send
//! gate and the vault behind it are inbox's tests) with the workspace in metadata and the caller as
//! the author, whatever the client wrote; viewers may ask but not send; inbox's answers, refusals
//! included, and its statuses reach the caller; what was sent is audited `message.sent`.

use scifer_audit::store::{self, Filter, PageRequest, entity::audit_record};
use scifer_proto::{
    gateway::v1::{CheckSendRequest, RetryMessageRequest, Role, SendMessageRequest},
    inbox::v1::{self as inbox, Author, AuthorKind, DeliveryStatus, send_message_response},
};
use tonic::Code;

use crate::helpers::{
    FAILED_ID, FAILURE_REASON, InboxMode, InboxRequest, PATIENCE, SENT_ID, TestApp, User, spawn_app,
    spawn_app_configured, spawn_app_with, window_closed,
};

/// A workspace with its owner, an agent and a viewer.
struct Team {
    workspace: String,
    agent: User,
    viewer: User,
}

async fn team(app: &TestApp) -> Team {
    let (owner, workspace) = app.owner_with_workspace().await;
    let agent = app.sign_up("agent").await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;
    Team {
        workspace,
        agent,
        viewer,
    }
}

fn message(conversation_id: &str) -> inbox::SendMessageRequest {
    inbox::SendMessageRequest {
        conversation_id: conversation_id.into(),
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        text: "Your order ships today.".into(),
        ..Default::default()
    }
}

fn send(workspace: &str, conversation_id: &str) -> SendMessageRequest {
    SendMessageRequest {
        workspace_id: workspace.into(),
        message: Some(message(conversation_id)),
    }
}

fn retry(workspace: &str, message_id: &str) -> RetryMessageRequest {
    RetryMessageRequest {
        workspace_id: workspace.into(),
        message_id: message_id.into(),
    }
}

fn check(workspace: &str, conversation_id: &str) -> CheckSendRequest {
    CheckSendRequest {
        workspace_id: workspace.into(),
        conversation_id: conversation_id.into(),
    }
}

fn human(user: &User) -> Option<Author> {
    Some(Author {
        kind: AuthorKind::Human as i32,
        id: user.user_id.clone(),
    })
}

/// The workspace's records of `action`, oldest first, once there are at least `count`.
async fn records(app: &TestApp, workspace: &str, action: &str, count: usize) -> Vec<audit_record::Model> {
    let db = scifer_db::connect(&app.db_url).await.unwrap();
    let workspace = scifer_ids::WorkspaceId::parse(workspace).unwrap();
    let filter = Filter {
        action: Some(action.into()),
        ..Filter::default()
    };
    let page = PageRequest {
        before: None,
        limit: store::MAX_PAGE,
    };
    let list = || async {
        let mut records = store::list(&db, &workspace, &filter, page).await.unwrap().records;
        records.reverse();
        records
    };
    let stored = scifer_test_support::wait_until(PATIENCE, || async { list().await.len() >= count }).await;
    let records = list().await;
    assert!(
        stored.is_ok(),
        "{} of {count} {action} records stored: {records:#?}",
        records.len()
    );
    records
}

/// (actor kind, actor id, target kind, target id, outcome, detail).
fn row(r: &audit_record::Model) -> (String, String, String, String, String, String) {
    (
        r.actor_kind.clone(),
        r.actor_id.clone(),
        r.target_kind.clone(),
        r.target_id.clone(),
        r.outcome.clone(),
        r.detail.clone(),
    )
}

fn want(
    actor: &str,
    target: (&str, &str),
    outcome: &str,
    detail: &str,
) -> (String, String, String, String, String, String) {
    (
        "user".into(),
        actor.into(),
        target.0.into(),
        target.1.into(),
        outcome.into(),
        detail.into(),
    )
}

#[tokio::test]
async fn viewers_may_not_send_or_retry_and_their_attempts_are_recorded() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.viewer.token));

    let status = client
        .send_message(send(&team.workspace, "c1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = client
        .retry_message(retry(&team.workspace, FAILED_ID))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(app.inbox.calls(), 0, "a refused call reached inbox");

    let denied = records(&app, &team.workspace, "access.denied", 2).await;
    let denied: Vec<_> = denied.iter().map(row).collect();
    let viewer = team.viewer.user_id.as_str();
    let detail = "role viewer; requires agent";
    assert_eq!(
        denied,
        vec![
            want(
                viewer,
                ("rpc", "/scifer.gateway.v1.InboxApi/SendMessage"),
                "denied",
                detail
            ),
            want(
                viewer,
                ("rpc", "/scifer.gateway.v1.InboxApi/RetryMessage"),
                "denied",
                detail
            ),
        ]
    );
}

#[tokio::test]
async fn an_agents_send_reaches_inbox_as_the_agent_whatever_author_the_client_wrote() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));

    // Someone else, as a bot; and no author at all.
    let claimed = Author {
        kind: AuthorKind::Ai as i32,
        id: team.viewer.user_id.clone(),
    };
    for author in [Some(claimed), None] {
        let composed = inbox::SendMessageRequest {
            author,
            quick_replies: vec![inbox::QuickReply {
                title: "Track it".into(),
                payload: "TRACK".into(),
            }],
            proactive: true,
            ..message("c1")
        };
        let request = SendMessageRequest {
            workspace_id: team.workspace.clone(),
            message: Some(composed.clone()),
        };
        let answer = client.send_message(request).await.unwrap().into_inner();
        let Some(send_message_response::Result::Message(sent)) = answer.result else {
            panic!("no message: {answer:?}");
        };
        assert_eq!(sent.id, SENT_ID);
        assert_eq!(sent.status(), DeliveryStatus::Sent);

        let calls = app.inbox.requests();
        let call = calls.last().unwrap();
        // Everything the client composed reaches inbox as written, but the author.
        let forwarded = inbox::SendMessageRequest {
            author: human(&team.agent),
            ..composed
        };
        assert_eq!(call.request, InboxRequest::SendMessage(forwarded));
        assert_eq!(
            call.metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
            team.workspace.as_str()
        );
        assert_eq!(
            call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
            format!("user:{}", team.agent.user_id).as_str()
        );
    }
    assert_eq!(app.inbox.calls(), 2);
}

#[tokio::test]
async fn a_retry_reaches_inbox_as_the_caller() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let answer = app
        .inbox_client(Some(&team.agent.token))
        .retry_message(retry(&team.workspace, FAILED_ID))
        .await
        .unwrap()
        .into_inner();
    let Some(send_message_response::Result::Message(sent)) = answer.result else {
        panic!("no message: {answer:?}");
    };
    assert_eq!(
        (sent.id.as_str(), sent.status()),
        (FAILED_ID, DeliveryStatus::Sent)
    );

    let calls = app.inbox.requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].request,
        InboxRequest::RetryMessage(inbox::RetryMessageRequest {
            message_id: FAILED_ID.into(),
            author: human(&team.agent),
        })
    );
    assert_eq!(
        calls[0].metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
        team.workspace.as_str()
    );
}

#[tokio::test]
async fn a_refusal_from_inbox_comes_back_as_the_refusal_unchanged() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));
    let refusal = Some(send_message_response::Result::Refusal(window_closed()));

    let answer = client
        .send_message(send(&team.workspace, "closed"))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().result, refusal);
    let answer = client
        .retry_message(retry(&team.workspace, "closed"))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().result, refusal);
}

#[tokio::test]
async fn check_send_forwards_with_author_human_and_viewers_may_ask() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.viewer.token));

    let allowed = client
        .check_send(check(&team.workspace, "c1"))
        .await
        .unwrap()
        .into_inner();
    assert!(allowed.allowed);
    assert_eq!(allowed.messaging_type, "RESPONSE");
    assert_eq!(allowed.until.map(|t| t.seconds), Some(1_700_086_400));
    let closed = client
        .check_send(check(&team.workspace, "closed"))
        .await
        .unwrap()
        .into_inner();
    assert!(!closed.allowed);
    assert_eq!(closed.refusal, Some(window_closed()));

    let calls = app.inbox.requests();
    let forwarded: Vec<_> = calls.iter().map(|c| c.request.clone()).collect();
    assert_eq!(
        forwarded,
        ["c1", "closed"].map(|id| InboxRequest::CheckSend(inbox::CheckSendRequest {
            conversation_id: id.into(),
            author: AuthorKind::Human as i32,
        }))
    );
    for call in &calls {
        assert_eq!(
            call.metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
            team.workspace.as_str()
        );
        assert_eq!(
            call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
            format!("user:{}", team.viewer.user_id).as_str()
        );
    }
}

#[tokio::test]
async fn what_was_sent_is_audited_message_sent_with_the_user_as_actor_and_refusals_are_not() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));

    // Records are stored in the order they were published: had the refusal been recorded, it
    // would be the first of the three below.
    client
        .send_message(send(&team.workspace, "closed"))
        .await
        .unwrap();
    client.send_message(send(&team.workspace, "c1")).await.unwrap();
    client
        .send_message(send(&team.workspace, "failing"))
        .await
        .unwrap();
    client
        .retry_message(retry(&team.workspace, FAILED_ID))
        .await
        .unwrap();

    let sent = records(&app, &team.workspace, "message.sent", 3).await;
    let agent = team.agent.user_id.as_str();
    assert_eq!(
        sent.iter().map(row).collect::<Vec<_>>(),
        vec![
            want(agent, ("message", SENT_ID), "success", ""),
            want(agent, ("message", FAILED_ID), "failure", FAILURE_REASON),
            want(agent, ("message", FAILED_ID), "success", ""),
        ]
    );
    assert!(sent.iter().all(|r| r.service == "gateway"), "{sent:#?}");
}

#[tokio::test]
async fn inbox_statuses_for_sends_reach_the_caller_with_inboxs_message() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));

    let status = client
        .send_message(send(&team.workspace, "nope"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "conversation not found")
    );
    let status = client
        .send_message(send(&team.workspace, "archived"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::FailedPrecondition,
            "the conversation's channel is disconnected"
        )
    );
    // No message at all: inbox finds no conversation id in it.
    let empty = SendMessageRequest {
        workspace_id: team.workspace.clone(),
        message: None,
    };
    let status = client.send_message(empty).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "conversation_id is required")
    );
    let status = client
        .retry_message(retry(&team.workspace, "nope"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "message not found")
    );
    let status = client
        .check_send(check(&team.workspace, "nope"))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "conversation not found")
    );
}

#[tokio::test]
async fn sending_to_an_inbox_that_is_down_is_unavailable() {
    let app = spawn_app_with(InboxMode::Down).await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let status = app
        .inbox_client(Some(&owner.token))
        .send_message(send(&workspace, "c1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains("127.0.0.1"), "{status:?}");
}

#[tokio::test]
async fn sends_wait_for_inbox_longer_than_reads() {
    // The defaults: INBOX_SEND_TIMEOUT_MS is far above the test's INBOX_TIMEOUT_MS, which the
    // `slow` conversation overruns.
    let app = spawn_app().await;
    let team = team(&app).await;
    let mut client = app.inbox_client(Some(&team.agent.token));
    let answer = client.send_message(send(&team.workspace, "slow")).await.unwrap();
    assert!(
        matches!(
            answer.into_inner().result,
            Some(send_message_response::Result::Message(_))
        ),
        "the send was cut off"
    );
    let status = client
        .check_send(check(&team.workspace, "slow"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn a_send_inbox_does_not_answer_within_inbox_send_timeout_ms_is_deadline_exceeded() {
    // Reads may wait far longer than sends here: only INBOX_SEND_TIMEOUT_MS can end this call soon.
    let settings = [("INBOX_TIMEOUT_MS", "10000"), ("INBOX_SEND_TIMEOUT_MS", "400")];
    let app = spawn_app_configured(InboxMode::Double, &settings).await;
    let team = team(&app).await;
    let started = std::time::Instant::now();
    let status = app
        .inbox_client(Some(&team.agent.token))
        .send_message(send(&team.workspace, "hang"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "the send waited {:?}: not INBOX_SEND_TIMEOUT_MS",
        started.elapsed()
    );
}
