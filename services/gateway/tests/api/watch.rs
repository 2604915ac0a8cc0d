//! WatchInbox over gRPC-web: the workspace's inbox events from the moment of the call, nothing of
//! other workspaces, and the subscription ends with the client.

use scifer_proto::gateway::v1::WatchInboxRequest;
use tonic::Code;

use crate::helpers::{PATIENCE, spawn_app};

fn watch(workspace: &str) -> WatchInboxRequest {
    WatchInboxRequest {
        workspace_id: workspace.into(),
    }
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
