use scifer_meta_sim::demo::DEMO_PAGE_ID;
use scifer_proto::{
    events::v1::ChannelState,
    tokenvault::v1::{
        EgressAction, EgressRequest, EgressResponse, OnBehalfOf, StartConnectRequest,
        egress_response::Outcome, graph_failure::Kind,
    },
};
use tonic::Code;

use crate::helpers::*;

pub fn send_request(channel_id: &str) -> EgressRequest {
    EgressRequest {
        workspace_id: WORKSPACE.into(),
        channel_id: channel_id.into(),
        action: EgressAction::SendMessage as i32,
        params_json: r#"{"recipient":{"id":"24000000000000001"},"messaging_type":"RESPONSE","message":{"text":"Hello from Scifer"}}"#.into(),
        actor: Some(OnBehalfOf {
            kind: "user".into(),
            id: "agent-7".into(),
        }),
    }
}

/// Sends one text message through the vault as inbox; returns the answer.
pub async fn send_text(vault: &TestVault, channel_id: &str) -> Result<EgressResponse, tonic::Status> {
    vault
        .client("inbox")
        .await
        .egress(send_request(channel_id))
        .await
        .map(|r| r.into_inner())
}

fn failure(r: EgressResponse) -> scifer_proto::tokenvault::v1::GraphFailure {
    match r.outcome {
        Some(Outcome::Failure(f)) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn egress_sends_with_the_channel_token_and_proof_and_audits_who_used_it() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    let answer = send_text(&vault, &page.channel_id).await.unwrap();
    let Some(Outcome::ResultJson(json)) = answer.outcome else {
        panic!("expected Meta's answer, got {answer:?}");
    };
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        body["message_id"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let sent = vault.sim.sent_messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sender_object_id, DEMO_PAGE_ID);
    assert_eq!(sent[0].body["message"]["text"], "Hello from Scifer");
    let call = vault
        .sim
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.path.ends_with("/messages"))
        .unwrap();
    assert!(call.had_appsecret_proof);

    let used = vault.wait_audit("token.used", 1).await;
    let a = &used[0];
    assert_eq!(a.actor.as_ref().unwrap().id, "agent-7");
    assert_eq!(a.target.as_ref().unwrap().id, page.channel_id);
    assert!(a.detail.contains("caller=inbox"), "{}", a.detail);
    assert!(a.detail.contains("SEND_MESSAGE"), "{}", a.detail);
}

#[tokio::test]
async fn only_the_services_allowed_for_an_rpc_may_call_it() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    // The gateway manages channels but never uses their tokens.
    let err = vault
        .client("gateway")
        .await
        .egress(send_request(&page.channel_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // inbox uses tokens but does not connect channels.
    let err = vault
        .client("inbox")
        .await
        .start_connect(StartConnectRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            redirect_uri: REDIRECT_URI.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A wrong credential, or none, is not a service at all.
    let err = vault
        .client_with("inbox", "guessed")
        .await
        .egress(send_request(&page.channel_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut bare =
        scifer_proto::tokenvault::v1::token_vault_service_client::TokenVaultServiceClient::connect(
            vault.grpc_url.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        bare.egress(send_request(&page.channel_id))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert!(
        vault.sim.sent_messages().is_empty(),
        "no refused call reached Meta"
    );
    // Another workspace's channel does not exist for the caller.
    let mut other = send_request(&page.channel_id);
    other.workspace_id = OTHER_WORKSPACE.into();
    let err = vault.client("inbox").await.egress(other).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn code_190_marks_the_page_and_its_instagram_account_and_stops_further_calls() {
    let vault = TestVault::start().await;
    let channels = vault.connect_demo_page().await.channels;
    let page = channels[0].clone();
    vault.sim.invalidate_tokens_of_page(DEMO_PAGE_ID, 463);
    let f = failure(send_text(&vault, &page.channel_id).await.unwrap());
    assert_eq!((f.kind, f.code, f.subcode), (Kind::TokenInvalid as i32, 190, 463));

    let marked = vault
        .wait_channel_events(2, |e| e.state == ChannelState::NeedsReauth as i32)
        .await;
    assert!(
        marked
            .iter()
            .all(|e| e.state_reason == "token_invalid:463" && e.version == 2)
    );
    let ids: Vec<_> = marked.iter().map(|e| e.channel_id.clone()).collect();
    assert!(ids.contains(&channels[0].channel_id) && ids.contains(&channels[1].channel_id));
    vault.wait_audit("channel.needs_reauth", 2).await;

    let calls_before = vault.sim.calls().len();
    let err = send_text(&vault, &page.channel_id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("token_invalid:463"), "{}", err.message());
    assert_eq!(
        vault.sim.calls().len(),
        calls_before,
        "no call reaches Meta for a channel needing reauth"
    );
}

#[tokio::test]
async fn throttling_is_classified_with_its_wait_and_the_bucket_is_held_without_calling_meta() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    vault.sim.throttle(DEMO_PAGE_ID, 80001, 7, None);
    let f = failure(send_text(&vault, &page.channel_id).await.unwrap());
    assert_eq!((f.kind, f.code), (Kind::Throttled as i32, 80001));
    assert!(
        f.retry_after_ms > 6 * 60 * 1000 && f.retry_after_ms <= 7 * 60 * 1000,
        "{}",
        f.retry_after_ms
    );

    let calls_before = vault.sim.calls().len();
    let f = failure(send_text(&vault, &page.channel_id).await.unwrap());
    assert_eq!(f.kind, Kind::Throttled as i32);
    assert!(f.retry_after_ms > 0);
    assert_eq!(
        vault.sim.calls().len(),
        calls_before,
        "the held bucket is not called"
    );
    // Throttling is not a token problem: the channel stays connected.
    assert!(
        vault
            .channel_events()
            .await
            .iter()
            .all(|e| e.state != ChannelState::NeedsReauth as i32)
    );
}

#[tokio::test]
async fn an_action_is_refused_before_meta_when_its_params_name_another_object() {
    let vault = TestVault::start().await;
    let channels = vault.connect_demo_page().await.channels;
    let ig = channels[1].clone();
    let err = vault
        .client("publisher")
        .await
        .egress(EgressRequest {
            workspace_id: WORKSPACE.into(),
            channel_id: ig.channel_id.clone(),
            action: EgressAction::GetContainerStatus as i32,
            params_json: r#"{"container_id":"me/accounts"}"#.into(),
            actor: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("container_id"), "{}", err.message());
}
