//! ChannelApi: forwarded to token-vault (a recording double here; token-vault itself is tested on
//! its own) with the caller's workspace and user filled by the gateway, its redirect URI and its
//! service identity; agents and viewers refused and audited; the vault's errors mapped. And the
//! needs-reauth alerts: one email per admin and owner per event, through an SMTP sink.

use std::collections::BTreeSet;

use scifer_audit::store::{self, Filter, PageRequest};
use scifer_proto::{
    events::v1::{ChannelEvent, ChannelState},
    gateway::v1::{
        CompleteConnectRequest, ConfirmConnectRequest, ConnectWhatsAppRequest, DisconnectChannelRequest,
        ListChannelsRequest, Role, StartConnectRequest, connect_whats_app_request,
    },
    tokenvault::v1 as vault,
};
use tonic::{Code, Request};

use crate::helpers::{
    APP_URL, InboxMode, PATIENCE, REDIRECT_URI, SmtpSink, TestApp, User, VAULT_CREDENTIAL, VaultRequest,
    needs_reauth, spawn_app, spawn_app_configured, vault_channel,
};

/// A workspace with an owner and one member of each other role.
struct Team {
    workspace: String,
    owner: User,
    admin: User,
    agent: User,
    viewer: User,
}

async fn team(app: &TestApp) -> Team {
    let (owner, workspace) = app.owner_with_workspace().await;
    let admin = app.sign_up("admin").await;
    let agent = app.sign_up("agent").await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &admin, Role::Admin).await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;
    Team {
        workspace,
        owner,
        admin,
        agent,
        viewer,
    }
}

fn start(workspace: &str) -> StartConnectRequest {
    StartConnectRequest {
        workspace_id: workspace.into(),
    }
}

#[tokio::test]
async fn agents_and_viewers_may_not_start_connecting_and_their_attempt_is_recorded() {
    let app = spawn_app().await;
    let team = team(&app).await;

    for user in [&team.agent, &team.viewer] {
        let status = app
            .channels(Some(&user.token))
            .start_connect(start(&team.workspace))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    assert_eq!(app.vault.calls(), 0, "a refused call reached the vault");

    let db = scifer_db::connect(&app.db_url).await.unwrap();
    let ws = scifer_ids::WorkspaceId::parse(&team.workspace).unwrap();
    let filter = Filter {
        action: Some("access.denied".into()),
        ..Filter::default()
    };
    let page = PageRequest {
        before: None,
        limit: store::MAX_PAGE,
    };
    let list = || async { store::list(&db, &ws, &filter, page).await.unwrap().records };
    let stored = scifer_test_support::wait_until(PATIENCE, || async { list().await.len() >= 2 }).await;
    stored.expect("two access.denied records");
    let denied = list().await;
    let mut seen: Vec<_> = denied
        .iter()
        .map(|r| {
            (
                r.actor_id.clone(),
                r.target_kind.clone(),
                r.target_id.clone(),
                r.outcome.clone(),
                r.detail.clone(),
            )
        })
        .collect();
    seen.sort();
    let rpc = "/scifer.gateway.v1.ChannelApi/StartConnect".to_string();
    let mut want = vec![
        (
            team.agent.user_id.clone(),
            "rpc".to_string(),
            rpc.clone(),
            "denied".to_string(),
            "role agent; requires admin".to_string(),
        ),
        (
            team.viewer.user_id.clone(),
            "rpc".to_string(),
            rpc,
            "denied".to_string(),
            "role viewer; requires admin".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn channel_calls_reach_the_vault_with_the_callers_workspace_and_user_and_the_gateways_identity() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let ws = team.workspace.clone();

    // Any member lists, over gRPC-web, with the browser's trace continuing into the vault.
    let mut listing = Request::new(ListChannelsRequest {
        workspace_id: ws.clone(),
    });
    listing.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    let listed = app
        .channels(Some(&team.viewer.token))
        .list_channels(listing)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.channels, vec![vault_channel(&ws, "ch-1")]);

    let admin = app.channels(Some(&team.admin.token));
    let started = admin
        .clone()
        .start_connect(start(&ws))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state, "state-1");
    assert!(started.dialog_url.starts_with("https://www.facebook.com/"));
    let completed = admin
        .clone()
        .complete_connect(CompleteConnectRequest {
            workspace_id: ws.clone(),
            state: "state-1".into(),
            code: "meta-code".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.session_id, "session-1");
    let confirmed = admin
        .clone()
        .confirm_connect(ConfirmConnectRequest {
            workspace_id: ws.clone(),
            session_id: "session-1".into(),
            page_ids: vec!["100000000000001".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.channels, vec![vault_channel(&ws, "ch-new")]);
    admin
        .clone()
        .connect_whats_app(ConnectWhatsAppRequest {
            workspace_id: ws.clone(),
            waba_id: "waba-1".into(),
            credential: Some(connect_whats_app_request::Credential::SystemUserToken(
                "system-user-token".into(),
            )),
        })
        .await
        .unwrap();
    let disconnected = app
        .channels(Some(&team.owner.token))
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: ws.clone(),
            channel_id: "ch-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disconnected.channel_ids, vec!["ch-1"]);

    let seen = app.vault.seen();
    let requests: Vec<VaultRequest> = seen.iter().map(|c| c.request.clone()).collect();
    let (admin_id, owner_id) = (team.admin.user_id.clone(), team.owner.user_id.clone());
    assert_eq!(
        requests,
        vec![
            VaultRequest::ListChannels(vault::ListChannelsRequest {
                workspace_id: ws.clone()
            }),
            VaultRequest::StartConnect(vault::StartConnectRequest {
                workspace_id: ws.clone(),
                user_id: admin_id.clone(),
                redirect_uri: REDIRECT_URI.into(),
            }),
            VaultRequest::CompleteConnect(vault::CompleteConnectRequest {
                workspace_id: ws.clone(),
                user_id: admin_id.clone(),
                state: "state-1".into(),
                code: "meta-code".into(),
            }),
            VaultRequest::ConfirmConnect(vault::ConfirmConnectRequest {
                workspace_id: ws.clone(),
                user_id: admin_id.clone(),
                session_id: "session-1".into(),
                page_ids: vec!["100000000000001".into()],
            }),
            VaultRequest::ConnectWhatsApp(vault::ConnectWhatsAppRequest {
                workspace_id: ws.clone(),
                user_id: admin_id,
                waba_id: "waba-1".into(),
                credential: Some(vault::connect_whats_app_request::Credential::SystemUserToken(
                    "system-user-token".into()
                )),
            }),
            VaultRequest::DisconnectChannel(vault::DisconnectChannelRequest {
                workspace_id: ws.clone(),
                user_id: owner_id,
                channel_id: "ch-1".into(),
            }),
        ]
    );
    for call in &seen {
        let metadata = &call.metadata;
        assert_eq!(metadata.get("x-scifer-service").unwrap(), "gateway", "{call:?}");
        assert_eq!(
            metadata.get("authorization").unwrap(),
            format!("Bearer {VAULT_CREDENTIAL}").as_str(),
            "the gateway's credential, never the user's session token"
        );
        assert!(
            metadata.get("traceparent").is_some(),
            "no trace context: {call:?}"
        );
    }
    let traceparent = seen[0].metadata.get("traceparent").unwrap().to_str().unwrap();
    assert!(
        traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "the browser's trace did not reach the vault: {traceparent}"
    );
}

#[tokio::test]
async fn the_vaults_refusals_reach_the_caller_with_its_message() {
    let app = spawn_app().await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .channels(Some(&owner.token))
        .disconnect_channel(DisconnectChannelRequest {
            workspace_id: ws,
            channel_id: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "channel not found");
    assert_eq!(app.vault.calls(), 1);
}

#[tokio::test]
async fn a_vault_that_is_down_answers_unavailable() {
    let down = format!("http://127.0.0.1:{}", scifer_test_support::free_port());
    let app = spawn_app_configured(InboxMode::Double, &[("TOKEN_VAULT_URL", &down)]).await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .channels(Some(&owner.token))
        .list_channels(ListChannelsRequest { workspace_id: ws })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(!status.message().contains("127.0.0.1"), "{}", status.message());
}

#[tokio::test]
async fn a_gateway_credential_the_vault_refuses_is_an_internal_error_not_the_callers() {
    let app = spawn_app_configured(
        InboxMode::Double,
        &[("TOKEN_VAULT_CREDENTIAL", "not-the-credential-the-vault-knows")],
    )
    .await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .channels(Some(&owner.token))
        .start_connect(start(&ws))
        .await
        .unwrap_err();
    // UNAUTHENTICATED would tell the frontend that the user's session ended.
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(app.vault.calls(), 1, "the vault itself refused");
}

#[tokio::test]
async fn without_a_vault_credential_channel_calls_fail_precondition_and_reach_nothing() {
    let app = spawn_app_configured(InboxMode::Double, &[("TOKEN_VAULT_CREDENTIAL", "")]).await;
    let (owner, ws) = app.owner_with_workspace().await;
    let status = app
        .channels(Some(&owner.token))
        .list_channels(ListChannelsRequest { workspace_id: ws })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(app.vault.calls(), 0);
}

/// A gateway that mails through a local SMTP sink, and its channel alerts consumer ready.
async fn app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_configured(InboxMode::Double, &[("SMTP_URL", &sink.url())]).await;
    app.channel_alerts_consumer().await;
    (app, sink)
}

#[tokio::test]
async fn a_needs_reauth_event_mails_each_admin_and_owner_once_with_the_reconnect_link() {
    let (app, sink) = app_with_sink().await;
    let team = team(&app).await;
    // The owner of another workspace hears nothing about this one.
    let (stranger, _) = app.owner_with_workspace().await;

    let event = needs_reauth(
        &team.workspace,
        "ch-ig-1",
        "ch-ig-1:v2",
        "missing_scope:instagram_manage_messages",
    );
    let first = app.publish_channel_event(&event, "ch-ig-1:v2").await;
    app.channel_alerts_acked_through(first).await;

    let mails = sink.mails();
    let recipients: BTreeSet<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    let expected: BTreeSet<String> = [&team.owner, &team.admin]
        .iter()
        .map(|u| format!("<{}>", u.email))
        .collect();
    assert_eq!(
        recipients, expected,
        "agents, viewers and {} are not told",
        stranger.email
    );
    assert_eq!(mails.len(), 2, "one email each");
    let link = format!(
        "{APP_URL}/workspaces/{}/channels?reconnect=ch-ig-1",
        team.workspace
    );
    for mail in &mails {
        let text = mail.text();
        assert!(
            text.lines().any(|line| line == link),
            "the reconnect link is not on a line of its own in {text}"
        );
        assert!(
            mail.data
                .contains("Subject: Reconnect Instagram channel \"Acme Shop\" in Acme on Scifer"),
            "{}",
            mail.data
        );
        assert!(
            text.contains(
                "stopped working: a permission Scifer needs was removed (instagram_manage_messages)."
            ),
            "{text}"
        );
    }

    // The same event again (a replay, or a vault that published it twice), and the channel's
    // later reconnection: no further email.
    let reconnected = ChannelEvent {
        event_id: "ch-ig-1:v3".into(),
        state: ChannelState::Connected as i32,
        version: 3,
        state_reason: String::new(),
        ..event.clone()
    };
    app.publish_channel_event(&reconnected, "ch-ig-1:v3").await;
    let again = app.publish_channel_event(&event, "ch-ig-1:v2:replayed").await;
    app.channel_alerts_acked_through(again).await;
    assert_eq!(sink.mails().len(), 2, "{:#?}", sink.mails());
}
