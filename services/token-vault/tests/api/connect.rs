use scifer_meta_sim::demo::{DEMO_IG_ACCOUNT_ID, DEMO_PAGE_ID, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID};
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    tokenvault::v1::{
        CompleteConnectRequest, ConnectWhatsAppRequest, ListChannelsRequest, StartConnectRequest,
        connect_whats_app_request::Credential,
    },
};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn facebook_login_connects_a_page_and_its_instagram_account_and_announces_them() {
    let vault = TestVault::start().await;
    let connected = vault.connect_demo_page().await;
    let kinds: Vec<(i32, &str)> = connected
        .channels
        .iter()
        .map(|c| (c.kind, c.account_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ChannelKind::Messenger as i32, DEMO_PAGE_ID),
            (ChannelKind::Instagram as i32, DEMO_IG_ACCOUNT_ID)
        ]
    );
    let ig = &connected.channels[1];
    assert_eq!(ig.parent_account_id, DEMO_PAGE_ID);
    assert!(
        connected
            .channels
            .iter()
            .all(|c| c.state == ChannelState::Connected as i32)
    );

    // The app is subscribed to the Page's webhooks with the fields webhook-ingest consumes.
    let fields = vault
        .sim
        .subscribed_fields(DEMO_PAGE_ID)
        .expect("page subscribed");
    for f in [
        "messages",
        "message_echoes",
        "messaging_handovers",
        "standby",
        "feed",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    // Every Graph call carried appsecret_proof.
    assert!(
        vault
            .sim
            .calls()
            .iter()
            .filter(|c| c.token_kind.is_some())
            .all(|c| c.had_appsecret_proof)
    );

    let events = vault
        .wait_channel_events(2, |e| e.state == ChannelState::Connected as i32)
        .await;
    assert!(
        events
            .iter()
            .all(|e| e.workspace_id == WORKSPACE && e.version == 1)
    );
    assert_eq!(events.iter().filter(|e| e.channel_id == ig.channel_id).count(), 1);
    let audits = vault.wait_audit("channel.connected", 2).await;
    assert!(
        audits
            .iter()
            .all(|a| a.actor.as_ref().unwrap().id == USER && a.service == "token-vault")
    );

    let listed = vault
        .client("gateway")
        .await
        .list_channels(ListChannelsRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.channels.len(), 2);
    let other = vault
        .client("gateway")
        .await
        .list_channels(ListChannelsRequest {
            workspace_id: OTHER_WORKSPACE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.channels.is_empty(), "channels leak across workspaces");
}

#[tokio::test]
async fn the_state_is_single_use_and_bound_to_its_workspace_and_user() {
    let vault = TestVault::start().await;
    let mut gw = vault.client("gateway").await;
    let start = |ws: &str| StartConnectRequest {
        workspace_id: ws.into(),
        user_id: USER.into(),
        redirect_uri: REDIRECT_URI.into(),
    };
    let started = gw.start_connect(start(WORKSPACE)).await.unwrap().into_inner();
    let (code, state) = vault.consent(&started.dialog_url).await;

    let complete = |ws: &str, user: &str, state: &str| CompleteConnectRequest {
        workspace_id: ws.into(),
        user_id: user.into(),
        state: state.into(),
        code: code.clone(),
    };
    for (ws, user, st) in [
        (OTHER_WORKSPACE, USER, state.as_str()),
        (WORKSPACE, "someone-else", state.as_str()),
        (WORKSPACE, USER, "forged-state"),
    ] {
        let err = gw.complete_connect(complete(ws, user, st)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{ws} {user} {st}");
    }
    gw.complete_connect(complete(WORKSPACE, USER, &state))
        .await
        .unwrap();
    let again = gw
        .complete_connect(complete(WORKSPACE, USER, &state))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::InvalidArgument);
    assert!(again.message().contains("already used"), "{}", again.message());

    let bad_redirect = gw
        .start_connect(StartConnectRequest {
            redirect_uri: "https://evil.example/cb".into(),
            ..start(WORKSPACE)
        })
        .await
        .unwrap_err();
    assert_eq!(bad_redirect.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_login_without_a_required_permission_is_refused_with_the_permission_named() {
    let vault = TestVault::start().await;
    let mut gw = vault.client("gateway").await;
    let started = gw
        .start_connect(StartConnectRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            redirect_uri: REDIRECT_URI.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (code, state) = vault.consent(&started.dialog_url).await;
    vault
        .sim
        .revoke_scope(&vault.sim.consenting_user_id(), "pages_manage_metadata");
    let err = gw
        .complete_connect(CompleteConnectRequest {
            workspace_id: WORKSPACE.into(),
            user_id: USER.into(),
            state,
            code,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("pages_manage_metadata"),
        "{}",
        err.message()
    );
    assert!(
        vault.sim.subscribed_fields(DEMO_PAGE_ID).is_none(),
        "nothing may be subscribed"
    );
}

#[tokio::test]
async fn whatsapp_connects_the_numbers_of_a_waba_and_refuses_wrong_tokens() {
    let vault = TestVault::start().await;
    let connected = vault.connect_whatsapp(WORKSPACE).await;
    assert_eq!(connected.channels.len(), 1);
    let ch = &connected.channels[0];
    assert_eq!(
        (ch.kind, ch.account_id.as_str(), ch.parent_account_id.as_str()),
        (ChannelKind::Whatsapp as i32, DEMO_PHONE_NUMBER_ID, DEMO_WABA_ID)
    );
    assert!(
        vault.sim.subscribed_fields(DEMO_WABA_ID).is_some(),
        "WABA subscribed"
    );

    let mut gw = vault.client("gateway").await;
    // A token without the WhatsApp permissions.
    let weak = vault
        .sim
        .issue_system_user_token(DEMO_WABA_ID, &["business_management"]);
    let err = gw
        .connect_whats_app(ConnectWhatsAppRequest {
            workspace_id: OTHER_WORKSPACE.into(),
            user_id: USER.into(),
            waba_id: DEMO_WABA_ID.into(),
            credential: Some(Credential::SystemUserToken(weak)),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("whatsapp_business_messaging"),
        "{}",
        err.message()
    );
    // The same number cannot be connected to a second workspace.
    let err = gw
        .connect_whats_app(ConnectWhatsAppRequest {
            workspace_id: OTHER_WORKSPACE.into(),
            user_id: USER.into(),
            waba_id: DEMO_WABA_ID.into(),
            credential: Some(Credential::SystemUserToken(vault.whatsapp_token.clone())),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
}

#[tokio::test]
async fn reconnecting_a_channel_that_needs_reauth_makes_it_connected_again_with_a_newer_version() {
    let vault = TestVault::start().await;
    let first = vault.connect_demo_page().await;
    let page = first.channels[0].clone();
    vault.sim.invalidate_tokens_of_page(DEMO_PAGE_ID, 460);
    crate::egress::send_text(&vault, &page.channel_id).await.unwrap();
    vault
        .wait_channel_events(1, |e| {
            e.channel_id == page.channel_id && e.state == ChannelState::NeedsReauth as i32
        })
        .await;

    let again = vault.connect_demo_page().await;
    assert_eq!(
        again.channels[0].channel_id, page.channel_id,
        "same channel, not a new one"
    );
    assert_eq!(again.channels[0].state, ChannelState::Connected as i32);
    let events = vault
        .wait_channel_events(1, |e| e.channel_id == page.channel_id && e.version == 3)
        .await;
    assert_eq!(events[0].state, ChannelState::Connected as i32);
}
