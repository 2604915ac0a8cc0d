//! Invitations by email: an admin invites an address, the gateway emails a single-use token
//! through SMTP (a local sink here), the account with that email accepts it and joins with the
//! invited role; the token then answers like an unknown one, as does an expired one.

use std::time::Duration;

use scifer_audit::store::{self, Filter, PageRequest};
use scifer_proto::gateway::v1::{
    AcceptInvitationRequest, InviteMemberRequest, ListMembersRequest, ListWorkspacesRequest, Role,
};
use tonic::Code;

use crate::helpers::{
    InboxMode, PATIENCE, SmtpSink, TestApp, User, spawn_app, spawn_app_configured, token_in,
};

async fn app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_configured(
        InboxMode::Double,
        &[
            ("SMTP_URL", &sink.url()),
            ("MAIL_FROM", "Scifer <invites@scifer.test>"),
        ],
    )
    .await;
    (app, sink)
}

async fn invite(app: &TestApp, by: &User, workspace: &str, email: &str, role: Role) -> String {
    app.workspaces(Some(&by.token))
        .invite_member(InviteMemberRequest {
            workspace_id: workspace.into(),
            email: email.into(),
            role: role as i32,
            can_approve_posts: false,
        })
        .await
        .expect("invite")
        .into_inner()
        .invitation_id
}

async fn accept(app: &TestApp, user: &User, token: &str) -> Result<i32, tonic::Status> {
    app.accounts(Some(&user.token))
        .accept_invitation(AcceptInvitationRequest { token: token.into() })
        .await
        .map(|r| r.into_inner().role)
}

#[tokio::test]
async fn an_invitation_emailed_over_smtp_is_accepted_once_by_the_invited_account() {
    let (app, sink) = app_with_sink().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let bo = app.sign_up("bo").await;

    let invitation_id = invite(&app, &owner, &workspace, &bo.email.to_uppercase(), Role::Agent).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, vec![format!("<{}>", bo.email)]);
    assert_eq!(mail.from, "<invites@scifer.test>");
    assert!(
        mail.data.contains("Subject: You are invited to Acme on Scifer"),
        "{}",
        mail.data
    );
    let token = token_in(mail);

    // Someone else holding the token cannot use it, and it stays valid.
    let other = app.sign_up("eve").await;
    let refused = accept(&app, &other, &token).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    assert_eq!(accept(&app, &bo, &token).await.unwrap(), Role::Agent as i32);
    let listed = app
        .workspaces(Some(&bo.token))
        .list_workspaces(ListWorkspacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .workspaces;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].workspace_id.as_str(), listed[0].role),
        (workspace.as_str(), Role::Agent as i32)
    );
    let members = app
        .workspaces(Some(&owner.token))
        .list_members(ListMembersRequest {
            workspace_id: workspace.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert!(
        members
            .iter()
            .any(|m| m.user_id == bo.user_id && m.role == Role::Agent as i32)
    );

    // Spent: a second use answers as an unknown token does.
    let again = accept(&app, &bo, &token).await.unwrap_err();
    let unknown = accept(&app, &bo, &"ab".repeat(32)).await.unwrap_err();
    let junk = accept(&app, &bo, "not-a-token").await.unwrap_err();
    for status in [&again, &unknown, &junk] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(status.message(), again.message());
    }

    // One record for the invitation and one for its acceptance, none holding the token.
    let db = scifer_db::connect(&app.db_url).await.unwrap();
    let ws = scifer_ids::WorkspaceId::parse(&workspace).unwrap();
    let page = PageRequest {
        before: None,
        limit: store::MAX_PAGE,
    };
    let invited = |records: &[scifer_audit::store::entity::audit_record::Model]| {
        records
            .iter()
            .filter(|r| r.target_kind == "invitation")
            .map(|r| {
                (
                    r.actor_id.clone(),
                    r.action.clone(),
                    r.target_id.clone(),
                    r.outcome.clone(),
                    r.detail.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let stored = scifer_test_support::wait_until(PATIENCE, || async {
        let records = store::list(&db, &ws, &Filter::default(), page)
            .await
            .unwrap()
            .records;
        invited(&records).len() >= 2
    })
    .await;
    assert!(stored.is_ok(), "the invitation records were not stored");
    let records = store::list(&db, &ws, &Filter::default(), page)
        .await
        .unwrap()
        .records;
    let mut got = invited(&records);
    got.reverse();
    assert_eq!(
        got,
        vec![
            (
                owner.user_id.clone(),
                "member.invited".into(),
                invitation_id.clone(),
                "success".into(),
                "invited as agent".into()
            ),
            (
                bo.user_id.clone(),
                "member.invited".into(),
                invitation_id,
                "success".into(),
                "accepted as agent".into()
            ),
        ]
    );
    for r in &records {
        assert!(
            !format!("{r:?}").contains(&token),
            "the token is in an audit record"
        );
    }
}

#[tokio::test]
async fn an_expired_invitation_answers_like_an_unknown_one() {
    let (app, sink) = app_with_sink().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let bo = app.sign_up("bo").await;
    invite(&app, &owner, &workspace, &bo.email, Role::Viewer).await;
    let token = token_in(&sink.mails()[0]);
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let expired = accept(&app, &bo, &token).await.unwrap_err();
    assert_eq!(expired.code(), Code::NotFound, "{expired:?}");
    let unknown = accept(&app, &bo, &"cd".repeat(32)).await.unwrap_err();
    assert_eq!(expired.message(), unknown.message());
}

#[tokio::test]
async fn only_admins_invite_only_owners_invite_owners_and_members_are_not_invited_twice() {
    let (app, sink) = app_with_sink().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let admin = app.sign_up("admin").await;
    app.add_member(&owner, &workspace, &admin, Role::Admin).await;
    let agent = app.sign_up("agent").await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;

    let request = |role: Role, email: &str| InviteMemberRequest {
        workspace_id: workspace.clone(),
        email: email.into(),
        role: role as i32,
        can_approve_posts: false,
    };
    let by_agent = app
        .workspaces(Some(&agent.token))
        .invite_member(request(Role::Viewer, "new@example.test"))
        .await
        .unwrap_err();
    assert_eq!(by_agent.code(), Code::PermissionDenied);
    let owner_by_admin = app
        .workspaces(Some(&admin.token))
        .invite_member(request(Role::Owner, "new@example.test"))
        .await
        .unwrap_err();
    assert_eq!(owner_by_admin.code(), Code::PermissionDenied);
    let member_again = app
        .workspaces(Some(&admin.token))
        .invite_member(request(Role::Viewer, &agent.email))
        .await
        .unwrap_err();
    assert_eq!(member_again.code(), Code::AlreadyExists);
    assert!(sink.mails().is_empty(), "no email for a refused invitation");

    // An address without an account yet: invited now, accepted after sign-up.
    app.workspaces(Some(&admin.token))
        .invite_member(request(Role::Viewer, "later@example.test"))
        .await
        .unwrap();
    let token = token_in(&sink.mails()[0]);
    let later = app
        .accounts(None)
        .sign_up(scifer_proto::gateway::v1::SignUpRequest {
            email: "later@example.test".into(),
            password: crate::helpers::PASSWORD.into(),
            name: "Later".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let later = User {
        user_id: later.account.unwrap().user_id,
        email: "later@example.test".into(),
        token: later.session_token,
    };
    assert_eq!(accept(&app, &later, &token).await.unwrap(), Role::Viewer as i32);
}

#[tokio::test]
async fn without_smtp_the_invitation_is_only_logged_and_the_call_succeeds() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let id = invite(&app, &owner, &workspace, "someone@example.test", Role::Agent).await;
    assert!(!id.is_empty());
}

#[tokio::test]
async fn an_unreachable_relay_withdraws_the_invitation_and_says_so() {
    let port = scifer_test_support::free_port();
    let app = spawn_app_configured(
        InboxMode::Double,
        &[("SMTP_URL", &format!("smtp://127.0.0.1:{port}"))],
    )
    .await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let failed = app
        .workspaces(Some(&owner.token))
        .invite_member(InviteMemberRequest {
            workspace_id: workspace,
            email: "someone@example.test".into(),
            role: Role::Agent as i32,
            can_approve_posts: false,
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
}
