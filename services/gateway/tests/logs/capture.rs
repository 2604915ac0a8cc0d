//! No password and no session token in the logs: the gateway runs in-process with a global
//! subscriber that records everything (TRACE, span fields included) while accounts sign up, log
//! in, fail to log in, change passwords, invite and accept invitations (tokens by email through an
//! SMTP sink), connect a WhatsApp number with a system-user token (the gateway's vault credential
//! on the call), one with a credential the vault refuses, and log out.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use scifer_proto::gateway::v1::{
    AcceptInvitationRequest, ChangePasswordRequest, ConnectWhatsAppRequest, GetAccountRequest,
    InviteMemberRequest, ListChannelsRequest, LoginRequest, LogoutRequest, Role, connect_whats_app_request,
};
use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt};

use crate::helpers::{InboxMode, PASSWORD, SmtpSink, VAULT_CREDENTIAL, spawn_app_configured, token_in};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn no_password_or_session_token_appears_in_the_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .with_ansi(false),
    );
    // Global, not scoped to this thread: spans cross into the database driver's threads, and
    // the helpers' own subscriber (installed only if none is) then stays out of the way.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sink = SmtpSink::start().await;
    let app = spawn_app_configured(InboxMode::Double, &[("SMTP_URL", &sink.url())]).await;
    let user = app.sign_up("ana").await;
    let second = app.login(&user).await;
    let wrong = "wrong-but-long-password";
    for _ in 0..3 {
        let _ = app
            .accounts(None)
            .login(LoginRequest {
                email: user.email.clone(),
                password: wrong.into(),
            })
            .await
            .unwrap_err();
    }
    app.accounts(Some(&user.token))
        .get_account(GetAccountRequest {})
        .await
        .unwrap();
    let new_password = "the new secret passphrase";
    app.accounts(Some(&second))
        .change_password(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: new_password.into(),
        })
        .await
        .unwrap();
    // An invitation, emailed and accepted: its token must not be logged either.
    let (owner, workspace) = app.owner_with_workspace().await;
    // A channel call: the vault credential and the WhatsApp token pass through the gateway.
    let system_user_token = "EAAG-whatsapp-system-user-token-canary";
    app.channels(Some(&owner.token))
        .connect_whats_app(ConnectWhatsAppRequest {
            workspace_id: workspace.clone(),
            waba_id: "waba-1".into(),
            credential: Some(connect_whats_app_request::Credential::SystemUserToken(
                system_user_token.into(),
            )),
        })
        .await
        .unwrap();
    app.workspaces(Some(&owner.token))
        .invite_member(InviteMemberRequest {
            workspace_id: workspace.clone(),
            email: user.email.clone(),
            role: Role::Agent as i32,
            can_approve_posts: false,
        })
        .await
        .unwrap();
    let invitation = token_in(&sink.mails()[0]);
    // `second` is the session the password change kept.
    app.accounts(Some(&second))
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.clone(),
        })
        .await
        .unwrap();
    let _ = app
        .accounts(Some(&second))
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.clone(),
        })
        .await
        .unwrap_err();

    app.accounts(Some(&second))
        .logout(LogoutRequest {})
        .await
        .unwrap();
    // A call with the revoked token is logged as whatever it is logged as.
    let _ = app
        .accounts(Some(&second))
        .get_account(GetAccountRequest {})
        .await;

    // A gateway whose vault credential the vault refuses logs that, without the credential.
    let refused_credential = "refused-vault-credential-canary";
    let misconfigured = spawn_app_configured(
        InboxMode::Double,
        &[("TOKEN_VAULT_CREDENTIAL", refused_credential)],
    )
    .await;
    let (owner, workspace) = misconfigured.owner_with_workspace().await;
    let _ = misconfigured
        .channels(Some(&owner.token))
        .list_channels(ListChannelsRequest {
            workspace_id: workspace,
        })
        .await
        .unwrap_err();

    let logs = captured.text();
    assert!(
        logs.contains("token-vault refused the gateway's service identity"),
        "the capture works"
    );
    assert!(logs.contains("login failed"), "the capture works: {logs}");
    assert!(logs.contains("logged out"), "the capture works");
    assert!(
        logs.contains("member invited") && logs.contains("invitation accepted"),
        "the capture works"
    );
    for secret in [
        PASSWORD,
        new_password,
        wrong,
        user.token.as_str(),
        second.as_str(),
        invitation.as_str(),
        VAULT_CREDENTIAL,
        system_user_token,
        refused_credential,
    ] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
        assert!(
            !logs.to_lowercase().contains(&secret.to_lowercase()),
            "{secret:?} appears in the logs"
        );
    }
}
