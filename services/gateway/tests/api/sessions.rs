//! Sessions: expiry, logout, a removed member losing access on the next call, password change
//! revoking the other sessions, and the failed-login limits per account and per client address.

use std::time::Duration;

use prost::Message as _;
use scifer_proto::gateway::v1::{
    ChangePasswordRequest, GetAccountRequest, ListConversationsRequest, LoginRequest, LogoutRequest,
    RemoveMemberRequest, Role,
};
use tonic::{Code, Request, Status};

use crate::helpers::{InboxMode, PASSWORD, TestApp, spawn_app, spawn_app_configured};

const GENERIC: &str = "missing, invalid or expired session";

async fn account(app: &TestApp, token: &str) -> Result<String, Status> {
    app.accounts(Some(token))
        .get_account(GetAccountRequest {})
        .await
        .map(|r| r.into_inner().user_id)
}

fn assert_unauthenticated(result: Result<String, Status>) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.message(),
        GENERIC,
        "one message for every way a session fails"
    );
}

async fn login(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Result<String, Status> {
    let mut request = Request::new(LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    if let Some(addr) = forwarded_for {
        request
            .metadata_mut()
            .insert("x-forwarded-for", addr.parse().unwrap());
    }
    app.accounts(None)
        .login(request)
        .await
        .map(|r| r.into_inner().session_token)
}

/// The retry delay in a RESOURCE_EXHAUSTED's `google.rpc.RetryInfo`.
fn retry_delay(status: &Status) -> Duration {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        retry_delay: Option<prost_types::Duration>,
    }
    let details = RpcStatus::decode(status.details()).unwrap();
    let any = details
        .details
        .iter()
        .find(|d| d.type_url == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo in the details");
    let delay = RetryInfo::decode(any.value.as_slice())
        .unwrap()
        .retry_delay
        .unwrap();
    Duration::from_secs(delay.seconds as u64)
}

#[tokio::test]
async fn a_session_expires_after_its_ttl_and_unknown_tokens_get_the_same_answer() {
    let app = spawn_app_configured(InboxMode::Double, &[("SESSION_TTL_HOURS", "1")]).await;
    let user = app.sign_up("ana").await;
    assert_eq!(account(&app, &user.token).await.unwrap(), user.user_id);

    app.clock.advance(Duration::from_secs(59 * 60));
    assert!(account(&app, &user.token).await.is_ok(), "still within the hour");
    app.clock.advance(Duration::from_secs(2 * 60));
    assert_unauthenticated(account(&app, &user.token).await);

    assert_unauthenticated(account(&app, &"0".repeat(64)).await);
    assert_unauthenticated(account(&app, "not-a-token").await);
    assert_unauthenticated(
        app.accounts(None)
            .get_account(GetAccountRequest {})
            .await
            .map(|_| String::new()),
    );
}

#[tokio::test]
async fn logout_ends_that_session_at_once_and_only_that_one() {
    let app = spawn_app().await;
    let user = app.sign_up("ana").await;
    let other = app.login(&user).await;
    app.accounts(Some(&user.token))
        .logout(LogoutRequest {})
        .await
        .unwrap();
    assert_unauthenticated(account(&app, &user.token).await);
    assert_unauthenticated(
        app.accounts(Some(&user.token))
            .logout(LogoutRequest {})
            .await
            .map(|_| String::new()),
    );
    assert_eq!(account(&app, &other).await.unwrap(), user.user_id);
}

#[tokio::test]
async fn a_removed_member_loses_the_workspace_on_the_next_call() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;
    let list = || ListConversationsRequest {
        workspace_id: workspace.clone(),
        query: None,
    };
    let mut client = app.inbox_client(Some(&viewer.token));
    client.list_conversations(list()).await.unwrap();
    let calls = app.inbox.calls();

    app.workspaces(Some(&owner.token))
        .remove_member(RemoveMemberRequest {
            workspace_id: workspace.clone(),
            user_id: viewer.user_id.clone(),
        })
        .await
        .unwrap();
    let status = client.list_conversations(list()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(status.message(), "workspace not found");
    assert_eq!(app.inbox.calls(), calls, "nothing reached inbox");
    // The session itself is untouched.
    assert!(account(&app, &viewer.token).await.is_ok());
}

#[tokio::test]
async fn a_password_change_revokes_every_other_session_but_the_current_one() {
    let app = spawn_app().await;
    let user = app.sign_up("ana").await;
    let laptop = app.login(&user).await;
    let phone = app.login(&user).await;
    let new_password = "a much longer new passphrase";

    let wrong = app
        .accounts(Some(&laptop))
        .change_password(ChangePasswordRequest {
            current_password: "not the password".into(),
            new_password: new_password.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    let short = app
        .accounts(Some(&laptop))
        .change_password(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: "short".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument, "{short:?}");
    assert!(
        account(&app, &phone).await.is_ok(),
        "failed changes revoke nothing"
    );

    app.accounts(Some(&laptop))
        .change_password(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: new_password.into(),
        })
        .await
        .unwrap();
    assert!(account(&app, &laptop).await.is_ok(), "the current session stays");
    assert_unauthenticated(account(&app, &phone).await);
    assert_unauthenticated(account(&app, &user.token).await);
    assert_eq!(
        login(&app, &user.email, PASSWORD, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(login(&app, &user.email, new_password, None).await.is_ok());
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_for_the_rest_of_the_window() {
    let app = spawn_app().await;
    let user = app.sign_up("ana").await;
    for _ in 0..5 {
        let status = login(&app, &user.email, "wrong password!", None)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), "wrong email or password");
    }
    // Even the right password, and the email in another case, while the window lasts.
    let status = login(&app, &user.email.to_uppercase(), PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let delay = retry_delay(&status);
    assert!(
        delay > Duration::from_secs(14 * 60) && delay <= Duration::from_secs(15 * 60),
        "{delay:?}"
    );
    assert!(status.message().contains("retry in"), "{status:?}");
    // Another account from the same address is not locked (5 < 20 per address).
    let other = app.sign_up("bob").await;
    assert!(login(&app, &other.email, PASSWORD, None).await.is_ok());

    app.clock.advance(Duration::from_secs(15 * 60));
    assert!(
        login(&app, &user.email, PASSWORD, None).await.is_ok(),
        "the window ended"
    );
}

#[tokio::test]
async fn failed_logins_are_limited_per_forwarded_client_address_when_trusted() {
    let app = spawn_app_configured(
        InboxMode::Double,
        &[
            ("LOGIN_MAX_FAILURES_PER_ADDRESS", "3"),
            ("TRUST_FORWARDED_FOR", "true"),
        ],
    )
    .await;
    let user = app.sign_up("ana").await;
    // Different (unknown) accounts each time: only the address ties them together.
    for i in 0..3 {
        let email = format!("nobody{i}@example.test");
        let status = login(&app, &email, "guess guess guess", Some("203.0.113.7, 10.0.0.1"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let status = login(&app, &user.email, PASSWORD, Some("203.0.113.7"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        login(&app, &user.email, PASSWORD, Some("198.51.100.1"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn without_trust_a_forged_forwarded_for_does_not_escape_the_address_limit() {
    let app = spawn_app_configured(InboxMode::Double, &[("LOGIN_MAX_FAILURES_PER_ADDRESS", "3")]).await;
    let user = app.sign_up("ana").await;
    for i in 0..3 {
        let forged = format!("192.0.2.{i}");
        let email = format!("nobody{i}@example.test");
        let status = login(&app, &email, "guess guess guess", Some(&forged))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let status = login(&app, &user.email, PASSWORD, Some("192.0.2.200"))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "the peer address counts: {status:?}"
    );
}
