//! WatchInbox over gRPC-web: the workspace's inbox events from the moment of the call, nothing of
//! other workspaces, and the subscription ends with the client, or with the caller's right to watch
//! (logout, expiry, removal from the workspace; the test gateway re-checks every second).

use std::time::Duration;

use scifer_proto::{
    events::v1::{InboxEvent, ReadMarkerMoved, inbox_event::Kind},
    gateway::v1::{LogoutRequest, RemoveMemberRequest, Role, SetTypingRequest, WatchInboxRequest},
};
use tonic::{Code, Status, Streaming};

use crate::helpers::{PATIENCE, TestApp, spawn_app};

fn watch(workspace: &str) -> WatchInboxRequest {
    WatchInboxRequest {
        workspace_id: workspace.into(),
        conversation_id: String::new(),
    }
}

async fn next_event(stream: &mut Streaming<InboxEvent>) -> InboxEvent {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("no event in time")
        .expect("stream failed")
        .expect("stream ended")
}

fn read_marker(workspace: &str, event_id: &str, conversation: &str, user: &str) -> InboxEvent {
    InboxEvent {
        event_id: event_id.into(),
        workspace_id: workspace.into(),
        kind: Some(Kind::ReadMarkerMoved(ReadMarkerMoved {
            conversation_id: conversation.into(),
            user_id: user.into(),
            read_message_id: "m1".into(),
            unread_count: 0,
        })),
        ..Default::default()
    }
}

#[tokio::test]
async fn typing_reaches_teammates_but_not_the_typist_and_viewers_cannot_type() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let agent = app.sign_up("agent").await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &ws, &agent, Role::Agent).await;
    app.add_member(&owner, &ws, &viewer, Role::Viewer).await;
    let mut owners = app
        .inbox_client(Some(&owner.token))
        .watch_inbox(watch(&ws))
        .await
        .unwrap()
        .into_inner();
    let mut agents = app
        .inbox_client(Some(&agent.token))
        .watch_inbox(watch(&ws))
        .await
        .unwrap()
        .into_inner();

    let typing = app
        .inbox_client(Some(&agent.token))
        .set_typing(SetTypingRequest {
            workspace_id: ws.clone(),
            conversation_id: "c1".into(),
            typing: true,
        })
        .await
        .unwrap()
        .into_inner();
    let event = next_event(&mut owners).await;
    let Some(Kind::TypingChanged(t)) = &event.kind else {
        panic!("expected typing, got {event:?}")
    };
    assert_eq!(
        (t.conversation_id.as_str(), t.user_id.as_str(), t.typing),
        ("c1", agent.user_id.as_str(), true)
    );
    assert_eq!(t.expires_at, typing.expires_at);
    assert!(typing.expires_at.unwrap().seconds > chrono::Utc::now().timestamp());

    // The typist's own stream skipped it: the next thing it sees is the event published after.
    app.publish_inbox_event(&ws, "after-typing").await;
    assert_eq!(next_event(&mut agents).await.event_id, "after-typing");

    let refused = app
        .inbox_client(Some(&viewer.token))
        .set_typing(SetTypingRequest {
            workspace_id: ws.clone(),
            conversation_id: "c1".into(),
            typing: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let invalid = app
        .inbox_client(Some(&agent.token))
        .set_typing(SetTypingRequest {
            workspace_id: ws.clone(),
            conversation_id: " ".into(),
            typing: true,
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
}

#[tokio::test]
async fn read_markers_reach_only_their_member_and_a_conversation_watch_only_its_conversation() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let agent = app.sign_up("agent").await;
    app.add_member(&owner, &ws, &agent, Role::Agent).await;
    let mut owners = app
        .inbox_client(Some(&owner.token))
        .watch_inbox(watch(&ws))
        .await
        .unwrap()
        .into_inner();
    let mut agent_on_c2 = app
        .inbox_client(Some(&agent.token))
        .watch_inbox(WatchInboxRequest {
            workspace_id: ws.clone(),
            conversation_id: "c2".into(),
        })
        .await
        .unwrap()
        .into_inner();

    // In publish order: the agent's marker on c1, the owner's on c2, the agent's on c2.
    app.publish_full_inbox_event(read_marker(&ws, "agent-c1", "c1", &agent.user_id))
        .await;
    app.publish_full_inbox_event(read_marker(&ws, "owner-c2", "c2", &owner.user_id))
        .await;
    app.publish_full_inbox_event(read_marker(&ws, "agent-c2", "c2", &agent.user_id))
        .await;

    assert_eq!(next_event(&mut owners).await.event_id, "owner-c2");
    assert_eq!(next_event(&mut agent_on_c2).await.event_id, "agent-c2");
}

#[tokio::test]
async fn watch_over_grpc_web_delivers_the_workspaces_events_published_after_the_call() {
    let app = spawn_app().await;
    let (owner, ws_a) = app.owner_with_workspace().await;
    let ws_b = app.create_workspace(&owner, "Other").await;
    let (ws_a, ws_b) = (ws_a.as_str(), ws_b.as_str());
    // Stored before the call: a live watch does not replay it.
    app.publish_inbox_event(ws_a, "before").await;

    let mut stream = app
        .inbox_client(Some(&owner.token))
        .watch_inbox(watch(ws_a))
        .await
        .unwrap()
        .into_inner();
    // Published in this order on one connection, so they arrive in this order: if the other
    // workspace's events leaked, they would come first.
    app.publish_inbox_event(ws_b, "other-1").await;
    app.publish_inbox_event(ws_a, "mine-1").await;
    app.publish_inbox_event(ws_b, "other-2").await;
    app.publish_inbox_event(ws_a, "mine-2").await;

    for expected in ["mine-1", "mine-2"] {
        let event = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("no event in time")
            .expect("stream failed")
            .expect("stream ended");
        assert_eq!(event.event_id, expected);
        assert_eq!(event.workspace_id, ws_a);
    }
}

#[tokio::test]
async fn a_watch_on_a_wildcard_or_dotted_workspace_is_invalid_argument() {
    let app = spawn_app().await;
    let (owner, _) = app.owner_with_workspace().await;
    let mut client = app.inbox_client(Some(&owner.token));
    for bad in ["", ">", "*", "ws-a.>", "ws a"] {
        let status = client.watch_inbox(watch(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    assert_eq!(app.active_watches.get(), 0);
}

#[tokio::test]
async fn the_subscription_ends_when_the_client_goes_away() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let stream = app
        .inbox_client(Some(&owner.token))
        .watch_inbox(watch(&ws))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(app.active_watches.get(), 1);
    drop(stream);
    scifer_test_support::wait_until(PATIENCE, || async { app.active_watches.get() == 0 })
        .await
        .expect("the watch outlived its client");
}

/// The next item of `stream`: an event, the error that ended it, or None once it has ended.
async fn next(stream: &mut Streaming<InboxEvent>) -> Result<Option<InboxEvent>, Status> {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream neither delivered nor ended in time")
}

/// Reads `stream` until it fails, skipping events published before the revocation was noticed,
/// and returns the status; then checks that an event published afterwards never arrives and the
/// subscription is gone.
async fn assert_ends_with(app: &TestApp, workspace: &str, stream: &mut Streaming<InboxEvent>, code: Code) {
    let status = loop {
        match next(stream).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), code, "{status:?}");
    app.publish_inbox_event(workspace, "after-the-end").await;
    assert!(
        matches!(next(stream).await, Ok(None)),
        "nothing may follow the error"
    );
    scifer_test_support::wait_until(PATIENCE, || async { app.active_watches.get() == 0 })
        .await
        .expect("the subscription outlived the revocation");
}

async fn open_watch(app: &TestApp, token: &str, workspace: &str) -> Streaming<InboxEvent> {
    let mut stream = app
        .inbox_client(Some(token))
        .watch_inbox(watch(workspace))
        .await
        .unwrap()
        .into_inner();
    // Live before the revocation: the end below is the re-check's doing.
    app.publish_inbox_event(workspace, "live").await;
    let event = next(&mut stream).await.unwrap().expect("stream ended");
    assert_eq!(event.event_id, "live");
    stream
}

#[tokio::test]
async fn logout_ends_the_open_watch_with_unauthenticated() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let mut stream = open_watch(&app, &owner.token, &ws).await;
    app.accounts(Some(&owner.token))
        .logout(LogoutRequest {})
        .await
        .unwrap();
    assert_ends_with(&app, &ws, &mut stream, Code::Unauthenticated).await;
}

#[tokio::test]
async fn an_expired_session_ends_the_open_watch_with_unauthenticated() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let mut stream = open_watch(&app, &owner.token, &ws).await;
    // Past the default 14-day session lifetime.
    app.clock.advance(Duration::from_secs(15 * 24 * 3600));
    assert_ends_with(&app, &ws, &mut stream, Code::Unauthenticated).await;
}

#[tokio::test]
async fn removing_the_member_ends_their_watch_with_not_found_and_no_one_elses() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let member = app.sign_up("member").await;
    app.add_member(&owner, &ws, &member, Role::Viewer).await;
    let mut theirs = open_watch(&app, &member.token, &ws).await;
    let mut owners = open_watch(&app, &owner.token, &ws).await;
    app.workspaces(Some(&owner.token))
        .remove_member(RemoveMemberRequest {
            workspace_id: ws.clone(),
            user_id: member.user_id.clone(),
        })
        .await
        .unwrap();
    let status = loop {
        match next(&mut theirs).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    app.publish_inbox_event(&ws, "after-the-end").await;
    assert!(
        matches!(next(&mut theirs).await, Ok(None)),
        "nothing may follow the error"
    );
    // The owner still watches, and gets what the removed member no longer does.
    let event = next(&mut owners)
        .await
        .unwrap()
        .expect("the owner's stream ended");
    assert_eq!(event.event_id, "after-the-end");
    scifer_test_support::wait_until(PATIENCE, || async { app.active_watches.get() == 1 })
        .await
        .expect("the removed member's subscription outlived the removal");
}
