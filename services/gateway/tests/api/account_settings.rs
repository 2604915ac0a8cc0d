//! Account settings: the display name, and the login email after the password is re-checked
//! (under the same failure limit as login and password change), which ends the account's other
//! sessions.

use scifer_proto::gateway::v1::{ChangeEmailRequest, GetAccountRequest, LoginRequest, UpdateAccountRequest};
use tonic::Code;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn the_name_changes_and_a_malformed_one_is_refused() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let updated = app
        .accounts(Some(&ana.token))
        .update_account(UpdateAccountRequest {
            name: "  Ana Lima ".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Ana Lima");
    let read = app
        .accounts(Some(&ana.token))
        .get_account(GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.name, "Ana Lima");
    for bad in ["", "   ", "a\u{7}b"] {
        let refused = app
            .accounts(Some(&ana.token))
            .update_account(UpdateAccountRequest { name: bad.into() })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad:?}");
    }
}

#[tokio::test]
async fn the_email_changes_with_the_password_and_the_new_one_logs_in() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let changed = app
        .accounts(Some(&ana.token))
        .change_email(ChangeEmailRequest {
            new_email: " Ana.New@Example.TEST ".into(),
            current_password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.email, "ana.new@example.test");
    let login = |email: &str| LoginRequest {
        email: email.into(),
        password: PASSWORD.into(),
    };
    app.accounts(None)
        .login(login("ana.new@example.test"))
        .await
        .unwrap();
    let old = app.accounts(None).login(login(&ana.email)).await.unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn another_accounts_email_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let bo = app.sign_up("bo").await;
    let taken = app
        .accounts(Some(&ana.token))
        .change_email(ChangeEmailRequest {
            new_email: bo.email.to_uppercase(),
            current_password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    let read = app
        .accounts(Some(&ana.token))
        .get_account(GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.email, ana.email);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_counts_toward_the_account_limit() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let attempt = |password: &str| ChangeEmailRequest {
        new_email: "elsewhere@example.test".into(),
        current_password: password.into(),
    };
    // The default limit: five failures per account in the window.
    for _ in 0..5 {
        let wrong = app
            .accounts(Some(&ana.token))
            .change_email(attempt("not the password at all"))
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    }
    let limited = app
        .accounts(Some(&ana.token))
        .change_email(attempt(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let read = app
        .accounts(Some(&ana.token))
        .get_account(GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.email, ana.email);
}

#[tokio::test]
async fn an_email_change_revokes_the_other_sessions_and_keeps_the_callers() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let other = app.login(&ana).await;
    app.accounts(Some(&ana.token))
        .change_email(ChangeEmailRequest {
            new_email: "ana.moved@example.test".into(),
            current_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let revoked = app
        .accounts(Some(&other))
        .get_account(GetAccountRequest {})
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Code::Unauthenticated, "{revoked:?}");
    let kept = app
        .accounts(Some(&ana.token))
        .get_account(GetAccountRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.email, "ana.moved@example.test");
}

#[tokio::test]
async fn the_same_email_again_changes_nothing_and_revokes_nothing() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana").await;
    let other = app.login(&ana).await;
    app.accounts(Some(&ana.token))
        .change_email(ChangeEmailRequest {
            new_email: ana.email.to_uppercase(),
            current_password: PASSWORD.into(),
        })
        .await
        .unwrap();
    app.accounts(Some(&other))
        .get_account(GetAccountRequest {})
        .await
        .unwrap();
}
