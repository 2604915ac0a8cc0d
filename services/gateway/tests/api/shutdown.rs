//! Graceful shutdown does not wait on watch streams, which would otherwise never end.

use scifer_proto::gateway::v1::WatchInboxRequest;
use tonic::Code;

use crate::helpers::{PATIENCE, spawn_app};

#[tokio::test]
async fn graceful_shutdown_with_an_open_watch_stream_finishes_promptly() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let mut stream = app
        .inbox_client(Some(&owner.token))
        .watch_inbox(WatchInboxRequest {
            workspace_id: ws,
            conversation_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(app.active_watches.get(), 1);

    app.shutdown.cancel();
    // The grace period is 60 s in tests: finishing well within PATIENCE means the stream ended.
    let stopped = tokio::time::timeout(PATIENCE, app.server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "did not stop cleanly: {stopped:?}"
    );
    let ended = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream did not end");
    let status = ended.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
