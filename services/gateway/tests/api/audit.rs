//! The audit log: each audited gateway action (account actions included: sign-up, name and email
//! change, refused sign-ups and email changes) leaves exactly one record with the right actor,
//! action, target and outcome, in the right chain; AuditApi lists, filters, pages, exports and
//! verifies a workspace's chain, and finds a record altered in the database.
//!
//! Records are read after the consumer stores them (`wait_until`). Every action below publishes
//! its event before its RPC returns and the consumer stores events in stream order, so once the
//! last expected record is stored every earlier one is too, and the counts are final.

use scifer_audit::{
    GLOBAL_WORKSPACE,
    store::{self, Filter, PageRequest, entity::audit_record},
};
use scifer_proto::{
    events::v1::{ActorKind, audit_event::Outcome},
    gateway::v1::{
        AddMemberRequest, AuditFilter, ChangeEmailRequest, ChangePasswordRequest, ChangeRoleRequest,
        ExportAuditLogRequest, ListAuditRecordsRequest, ListMembersRequest, LoginRequest, LogoutRequest,
        RemoveMemberRequest, Role, SignUpRequest, UpdateAccountRequest, VerifyAuditChainRequest,
    },
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::Code;

use crate::helpers::{PASSWORD, PATIENCE, TestApp, User, spawn_app};

/// (actor kind, actor id, action, target kind, target id, outcome, detail), as stored.
type Row = (String, String, String, String, String, String, String);

fn row(r: &audit_record::Model) -> Row {
    (
        r.actor_kind.clone(),
        r.actor_id.clone(),
        r.action.clone(),
        r.target_kind.clone(),
        r.target_id.clone(),
        r.outcome.clone(),
        r.detail.clone(),
    )
}

fn expect(actor: (&str, &str), action: &str, target: (&str, &str), outcome: &str, detail: &str) -> Row {
    (
        actor.0.into(),
        actor.1.into(),
        action.into(),
        target.0.into(),
        target.1.into(),
        outcome.into(),
        detail.into(),
    )
}

async fn database(app: &TestApp) -> DatabaseConnection {
    scifer_db::connect(&app.db_url).await.unwrap()
}

/// A chain's records, oldest first, straight from the store (the global chain has no API).
async fn chain(db: &DatabaseConnection, workspace: &str) -> Vec<audit_record::Model> {
    let workspace = scifer_ids::WorkspaceId::parse(workspace).unwrap();
    let page = PageRequest {
        before: None,
        limit: store::MAX_PAGE,
    };
    let mut records = store::list(db, &workspace, &Filter::default(), page)
        .await
        .unwrap()
        .records;
    records.reverse();
    records
}

/// Waits until `workspace`'s chain holds `count` records and returns them, oldest first.
async fn wait_for_records(
    db: &DatabaseConnection,
    workspace: &str,
    count: usize,
) -> Vec<audit_record::Model> {
    let waited =
        scifer_test_support::wait_until(PATIENCE, || async { chain(db, workspace).await.len() >= count })
            .await;
    let records = chain(db, workspace).await;
    assert!(
        waited.is_ok(),
        "{workspace}: {} of {count} records stored: {:#?}",
        records.len(),
        records.iter().map(row).collect::<Vec<_>>()
    );
    records
}

fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// No field of any record holds one of `secrets`.
fn assert_no_secret(records: &[audit_record::Model], secrets: &[&str]) {
    for r in records {
        let text = format!("{r:?}");
        for secret in secrets {
            assert!(!text.contains(secret), "a record holds {secret:?}: {text}");
        }
    }
}

#[tokio::test]
async fn account_actions_leave_one_record_each_in_the_global_chain() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let alice = app.sign_up("alice").await;
    let session = app.login(&alice).await;
    let wrong = app
        .accounts(None)
        .login(LoginRequest {
            email: alice.email.clone(),
            password: "not the password at all".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let unknown_email = "Nobody-Here@Example.test";
    app.accounts(None)
        .login(LoginRequest {
            email: unknown_email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    app.accounts(Some(&session))
        .logout(LogoutRequest {})
        .await
        .unwrap();
    let new_password = "an entirely new passphrase";
    app.accounts(Some(&alice.token))
        .change_password(ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: new_password.into(),
        })
        .await
        .unwrap();
    app.accounts(Some(&alice.token))
        .update_account(UpdateAccountRequest {
            name: "Alice Liddell".into(),
        })
        .await
        .unwrap();
    let new_email = "Alice.Renamed@Example.test";
    let change_email = |password: &str| ChangeEmailRequest {
        new_email: new_email.into(),
        current_password: password.into(),
    };
    let wrong = app
        .accounts(Some(&alice.token))
        .change_email(change_email(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "the old password: {wrong:?}");
    app.accounts(Some(&alice.token))
        .change_email(change_email(new_password))
        .await
        .unwrap();
    // Someone tries to sign up with the address alice now has.
    let taken = app
        .accounts(None)
        .sign_up(SignUpRequest {
            email: new_email.to_uppercase(),
            password: PASSWORD.into(),
            name: "Mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);

    let records = wait_for_records(&db, GLOBAL_WORKSPACE, 10).await;
    let user = ("user", alice.user_id.as_str());
    let account = ("account", alice.user_id.as_str());
    let login_session = records[1].target_id.clone();
    assert!(!login_session.is_empty());
    let digest = sha256_hex("nobody-here@example.test");
    let expected = vec![
        expect(user, "account.created", account, "success", ""),
        expect(user, "auth.login", ("session", &login_session), "success", ""),
        expect(
            user,
            "auth.login_failed",
            ("account", &alice.user_id),
            "failure",
            "wrong password",
        ),
        expect(
            ("system", ""),
            "auth.login_failed",
            ("email_sha256", &digest),
            "failure",
            "no such account",
        ),
        expect(
            user,
            "auth.session_revoked",
            ("session", &login_session),
            "success",
            "logout",
        ),
        (
            "user".into(),
            alice.user_id.clone(),
            "auth.session_revoked".into(),
            "account".into(),
            alice.user_id.clone(),
            "success".into(),
            records[5].detail.clone(),
        ),
        expect(user, "account.updated", account, "success", "name changed"),
        expect(
            user,
            "account.email_changed",
            account,
            "failure",
            "wrong current password",
        ),
        (
            "user".into(),
            alice.user_id.clone(),
            "account.email_changed".into(),
            "account".into(),
            alice.user_id.clone(),
            "success".into(),
            records[8].detail.clone(),
        ),
        expect(
            ("system", ""),
            "account.created",
            ("email_sha256", &sha256_hex("alice.renamed@example.test")),
            "failure",
            "an account with this email exists",
        ),
    ];
    assert_eq!(records.iter().map(row).collect::<Vec<_>>(), expected);
    assert!(
        records[5]
            .detail
            .starts_with("password changed; 0 other session(s) revoked"),
        "{}",
        records[5].detail
    );
    assert!(
        records[8].detail.starts_with("0 other session(s) revoked"),
        "{}",
        records[8].detail
    );
    assert!(records.iter().all(|r| r.service == "gateway"));
    assert_no_secret(
        &records,
        &[
            PASSWORD,
            new_password,
            "not the password at all",
            &alice.token,
            &session,
            "nobody-here",
            "Nobody-Here",
            &alice.email,
            "alice.renamed",
            "Alice.Renamed",
            "ALICE.RENAMED",
        ],
    );
}

#[tokio::test]
async fn member_changes_and_refusals_leave_one_record_each_in_the_workspace_chain() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let (outsider, outsiders_workspace) = app.owner_with_workspace().await;
    let member = app.sign_up("member").await;
    app.add_member(&owner, &workspace, &member, Role::Agent).await;

    // An agent may not add members: refused by the auth layer.
    let refused = app
        .workspaces(Some(&member.token))
        .add_member(AddMemberRequest {
            workspace_id: workspace.clone(),
            email: outsider.email.clone(),
            role: Role::Viewer as i32,
            can_approve_posts: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    // The owner of another workspace reaches for this one.
    let probe = app
        .workspaces(Some(&outsider.token))
        .list_members(ListMembersRequest {
            workspace_id: workspace.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(probe.code(), Code::NotFound);
    app.workspaces(Some(&owner.token))
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: member.user_id.clone(),
            role: Role::Admin as i32,
        })
        .await
        .unwrap();
    app.workspaces(Some(&owner.token))
        .remove_member(RemoveMemberRequest {
            workspace_id: workspace.clone(),
            user_id: member.user_id.clone(),
        })
        .await
        .unwrap();
    // A workspace that does not exist: the refusal goes to the global chain, not a new chain.
    app.workspaces(Some(&outsider.token))
        .list_members(ListMembersRequest {
            workspace_id: "no-such-workspace".into(),
        })
        .await
        .unwrap_err();

    let records = wait_for_records(&db, &workspace, 5).await;
    let by_owner = ("user", owner.user_id.as_str());
    let target = ("member", member.user_id.as_str());
    assert_eq!(
        records.iter().map(row).collect::<Vec<_>>(),
        vec![
            expect(
                by_owner,
                "member.invited",
                target,
                "success",
                "added directly as agent"
            ),
            expect(
                ("user", &member.user_id),
                "access.denied",
                ("rpc", "/scifer.gateway.v1.WorkspaceApi/AddMember"),
                "denied",
                "role agent; requires admin",
            ),
            expect(
                ("user", &outsider.user_id),
                "access.denied",
                ("rpc", "/scifer.gateway.v1.WorkspaceApi/ListMembers"),
                "denied",
                "not a member of this workspace",
            ),
            expect(
                by_owner,
                "member.role_changed",
                target,
                "success",
                "agent -> admin"
            ),
            expect(by_owner, "member.removed", target, "success", "was admin"),
        ]
    );
    // The three sign-ups first, then the refusal.
    let global = wait_for_records(&db, GLOBAL_WORKSPACE, 4).await;
    let created = |user: &User| {
        expect(
            ("user", &user.user_id),
            "account.created",
            ("account", &user.user_id),
            "success",
            "",
        )
    };
    assert_eq!(
        global.iter().map(row).collect::<Vec<_>>(),
        vec![
            created(&owner),
            created(&outsider),
            created(&member),
            expect(
                ("user", &outsider.user_id),
                "access.denied",
                ("rpc", "/scifer.gateway.v1.WorkspaceApi/ListMembers"),
                "denied",
                "no workspace no-such-workspace",
            )
        ]
    );
    // The prober's own workspace records nothing about the attempt, and no chain was started for
    // the made-up id.
    assert!(chain(&db, &outsiders_workspace).await.is_empty());
    assert!(chain(&db, "no-such-workspace").await.is_empty());
    assert_no_secret(
        &records,
        &[PASSWORD, &owner.token, &member.token, &outsider.token],
    );
}

/// A workspace with three records: two members added, then one's role changed.
async fn workspace_with_history(
    app: &TestApp,
    db: &DatabaseConnection,
) -> (User, String, Vec<audit_record::Model>) {
    let (owner, workspace) = app.owner_with_workspace().await;
    let agent = app.sign_up("agent").await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &agent, Role::Agent).await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;
    app.workspaces(Some(&owner.token))
        .change_role(ChangeRoleRequest {
            workspace_id: workspace.clone(),
            user_id: viewer.user_id.clone(),
            role: Role::Agent as i32,
        })
        .await
        .unwrap();
    let records = wait_for_records(db, &workspace, 3).await;
    (owner, workspace, records)
}

async fn list(app: &TestApp, token: &str, workspace: &str, filter: AuditFilter) -> Vec<(i64, String)> {
    app.audit(Some(token))
        .list_audit_records(ListAuditRecordsRequest {
            workspace_id: workspace.into(),
            filter: Some(filter),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .records
        .into_iter()
        .map(|r| (r.sequence, r.action))
        .collect()
}

#[tokio::test]
async fn admins_list_records_newest_first_by_actor_action_and_time_in_pages() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (owner, workspace, stored) = workspace_with_history(&app, &db).await;
    let admin = app.sign_up("admin").await;
    // Adding the admin is the fourth record.
    app.add_member(&owner, &workspace, &admin, Role::Admin).await;
    wait_for_records(&db, &workspace, 4).await;

    let all = app
        .audit(Some(&admin.token))
        .list_audit_records(ListAuditRecordsRequest {
            workspace_id: workspace.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![4, 3, 2, 1]
    );
    assert!(all.next_page_token.is_empty());
    let newest = &all.records[0];
    assert_eq!(newest.actor.as_ref().unwrap().kind, ActorKind::User as i32);
    assert_eq!(newest.actor.as_ref().unwrap().id, owner.user_id);
    assert_eq!(newest.outcome, Outcome::Success as i32);
    assert_eq!(newest.target.as_ref().unwrap().id, admin.user_id);
    assert_eq!(newest.hash.len(), 64);
    assert_eq!(newest.prev_hash, all.records[1].hash);

    let invited = AuditFilter {
        action: "member.invited".into(),
        ..Default::default()
    };
    assert_eq!(
        list(&app, &admin.token, &workspace, invited).await,
        vec![
            (4, "member.invited".to_string()),
            (2, "member.invited".to_string()),
            (1, "member.invited".to_string())
        ]
    );
    let by_owner = AuditFilter {
        actor_kind: ActorKind::User as i32,
        actor_id: owner.user_id.clone(),
        ..Default::default()
    };
    assert_eq!(list(&app, &admin.token, &workspace, by_owner).await.len(), 4);
    let by_admin = AuditFilter {
        actor_id: admin.user_id.clone(),
        ..Default::default()
    };
    assert!(list(&app, &admin.token, &workspace, by_admin).await.is_empty());
    let by_system = AuditFilter {
        actor_kind: ActorKind::System as i32,
        ..Default::default()
    };
    assert!(list(&app, &admin.token, &workspace, by_system).await.is_empty());

    // Time bounds: from is inclusive, to exclusive.
    let first = stored[0].at_ms;
    let last = stored[2].at_ms;
    let up_to_third = AuditFilter {
        from_ms: first,
        to_ms: last + 1,
        ..Default::default()
    };
    let got = list(&app, &owner.token, &workspace, up_to_third).await;
    assert!(
        got.iter().any(|(s, _)| *s == 1) && got.iter().any(|(s, _)| *s == 3),
        "{got:?}"
    );
    let before_first = AuditFilter {
        to_ms: first,
        ..Default::default()
    };
    assert!(
        list(&app, &owner.token, &workspace, before_first)
            .await
            .is_empty()
    );

    // Pages of two, by token.
    let mut client = app.audit(Some(&owner.token));
    let page = |token: String| ListAuditRecordsRequest {
        workspace_id: workspace.clone(),
        filter: None,
        page_size: 2,
        page_token: token,
    };
    let one = client
        .list_audit_records(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        one.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![4, 3]
    );
    let two = client
        .list_audit_records(page(one.next_page_token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        two.records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert!(two.next_page_token.is_empty(), "{two:?}");
    let bad = client
        .list_audit_records(page("not-a-token".into()))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_export_is_json_lines_oldest_first_in_whole_line_chunks_over_grpc_web() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (owner, workspace, stored) = workspace_with_history(&app, &db).await;

    let export = |filter: Option<AuditFilter>| {
        let mut client = app.audit(Some(&owner.token));
        let workspace = workspace.clone();
        async move {
            let mut stream = client
                .export_audit_log(ExportAuditLogRequest {
                    workspace_id: workspace,
                    filter,
                })
                .await
                .unwrap()
                .into_inner();
            let mut text = String::new();
            while let Some(chunk) = stream.message().await.unwrap() {
                assert!(chunk.jsonl.ends_with(b"\n"), "a chunk ends mid-line");
                text.push_str(std::str::from_utf8(&chunk.jsonl).unwrap());
            }
            text.lines()
                .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
                .collect::<Vec<_>>()
        }
    };

    let lines = export(None).await;
    let sequences: Vec<i64> = lines.iter().map(|l| l["sequence"].as_i64().unwrap()).collect();
    assert_eq!(sequences, vec![1, 2, 3]);
    for (line, record) in lines.iter().zip(&stored) {
        assert_eq!(line["workspace_id"], workspace.as_str());
        assert_eq!(line["event_id"], record.event_id.as_str());
        assert_eq!(line["action"], record.action.as_str());
        assert_eq!(line["actor"]["id"], owner.user_id.as_str());
        assert_eq!(line["target"]["id"], record.target_id.as_str());
        assert_eq!(line["outcome"], "success");
        assert_eq!(line["hash"], record.hash.as_str());
    }
    assert_eq!(lines[2]["detail"], "viewer -> agent");

    let changes = export(Some(AuditFilter {
        action: "member.role_changed".into(),
        ..Default::default()
    }))
    .await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["sequence"], 3);
}

#[tokio::test]
async fn a_record_altered_in_the_database_is_reported_by_verify_at_its_sequence() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (owner, workspace, _) = workspace_with_history(&app, &db).await;
    let verify = || {
        let mut client = app.audit(Some(&owner.token));
        let workspace = workspace.clone();
        async move {
            client
                .verify_audit_chain(VerifyAuditChainRequest {
                    workspace_id: workspace,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };

    let intact = verify().await;
    assert!(intact.ok, "{intact:?}");
    assert_eq!(intact.record_count, 3);
    assert_eq!(intact.head_hash.len(), 64);

    // Someone with database access makes the promotion look like one to owner.
    let altered = db
        .execute_unprepared(&format!(
            "UPDATE audit_records SET detail = 'viewer -> owner' \
             WHERE workspace_id = '{workspace}' AND sequence = 3"
        ))
        .await
        .unwrap();
    assert_eq!(altered.rows_affected(), 1);
    let broken = verify().await;
    assert!(!broken.ok, "{broken:?}");
    assert_eq!(broken.broken_sequence, 3);
    assert!(broken.reason.contains("altered"), "{}", broken.reason);

    // A changed actor in the middle of the chain is found at its own sequence, the first break.
    db.execute_unprepared(&format!(
        "UPDATE audit_records SET actor_id = 'someone-else' \
         WHERE workspace_id = '{workspace}' AND sequence = 2"
    ))
    .await
    .unwrap();
    assert_eq!(verify().await.broken_sequence, 2);
}

#[tokio::test]
async fn agents_and_viewers_may_not_read_the_audit_log_and_their_attempt_is_recorded() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let viewer = app.sign_up("viewer").await;
    app.add_member(&owner, &workspace, &viewer, Role::Viewer).await;

    let status = app
        .audit(Some(&viewer.token))
        .verify_audit_chain(VerifyAuditChainRequest {
            workspace_id: workspace.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let records = wait_for_records(&db, &workspace, 2).await;
    assert_eq!(
        row(&records[1]),
        expect(
            ("user", &viewer.user_id),
            "access.denied",
            ("rpc", "/scifer.gateway.v1.AuditApi/VerifyAuditChain"),
            "denied",
            "role viewer; requires admin",
        )
    );
}
