//! Every RPC the gateway exposes, found in the compiled service descriptors (so a new RPC is in
//! here the moment it exists), called as each role, as a member of another workspace and without
//! a session. The auth layer must answer exactly what the permission table says, and nothing a
//! caller may not do reaches inbox or token-vault.

use std::str::FromStr;

use gateway::permissions::{self, Access};
use prost::Message as _;
use prost_types::FileDescriptorSet;
use scifer_proto::gateway::v1::Role;
use tonic::{Code, Request, Status};

use crate::helpers::{TestApp, spawn_app};

/// Field 1 of every workspace-scoped request; other requests get it too and ignore or reject it.
#[derive(Clone, PartialEq, prost::Message)]
struct Scoped {
    #[prost(string, tag = "1")]
    workspace_id: String,
}

/// Any response, fields skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct Anything {}

struct Rpc {
    path: String,
    server_streaming: bool,
}

fn gateway_rpcs() -> Vec<Rpc> {
    let set = FileDescriptorSet::decode(scifer_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "scifer.gateway.v1") {
        for service in &file.service {
            for method in &service.method {
                rpcs.push(Rpc {
                    path: format!("/scifer.gateway.v1.{}/{}", service.name(), method.name()),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    // Logout ends the session the rest of the matrix uses: call it last.
    rpcs.sort_by_key(|rpc| rpc.path.ends_with("/Logout"));
    rpcs
}

async fn call(app: &TestApp, token: Option<&str>, rpc: &Rpc, workspace: &str) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::with_origin(app.authed(token), app.origin());
    grpc.ready().await.map_err(|e| Status::unknown(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_str(&rpc.path).unwrap();
    let codec = tonic_prost::ProstCodec::<Scoped, Anything>::default();
    // Public RPCs get an empty request: field 1 would be an email they try to use.
    let public = permissions::required(&rpc.path) == Some(Access::Public);
    let message = Scoped {
        workspace_id: if public { String::new() } else { workspace.into() },
    };
    if rpc.server_streaming {
        grpc.server_streaming(Request::new(message), path, codec)
            .await
            .map(|_| ())
    } else {
        grpc.unary(Request::new(message), path, codec).await.map(|_| ())
    }
}

/// What the auth layer answers when it refuses, by kind.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Passed the layer (whatever the handler then made of the junk request).
    Allowed,
    Unauthenticated,
    PermissionDenied,
    WorkspaceNotFound,
}

fn outcome(result: &Result<(), Status>) -> Outcome {
    match result {
        Err(s)
            if s.code() == Code::Unauthenticated && s.message() == "missing, invalid or expired session" =>
        {
            Outcome::Unauthenticated
        }
        Err(s) if s.code() == Code::PermissionDenied => Outcome::PermissionDenied,
        Err(s) if s.code() == Code::NotFound && s.message() == "workspace not found" => {
            Outcome::WorkspaceNotFound
        }
        _ => Outcome::Allowed,
    }
}

#[tokio::test]
async fn every_rpc_answers_each_role_other_workspaces_and_anonymous_callers_as_the_table_says() {
    let app = spawn_app().await;
    let (owner, workspace) = app.owner_with_workspace().await;
    let mut callers = vec![("owner", Some(Role::Owner), owner.token.clone())];
    for (name, role) in [
        ("admin", Role::Admin),
        ("agent", Role::Agent),
        ("viewer", Role::Viewer),
    ] {
        let user = app.sign_up(name).await;
        app.add_member(&owner, &workspace, &user, role).await;
        callers.push((name, Some(role), user.token));
    }
    // A member (owner, even) of another workspace only.
    let outsider = app.owner_with_workspace().await.0;
    callers.push(("outsider", None, outsider.token));

    let rpcs = gateway_rpcs();
    assert!(rpcs.len() >= 14, "descriptors list {} RPCs", rpcs.len());
    let mut failures = Vec::new();
    for rpc in &rpcs {
        let access = permissions::required(&rpc.path)
            .unwrap_or_else(|| panic!("{} has no entry in the permission table", rpc.path));

        let before = (app.inbox.calls(), app.vault.calls());
        let got = outcome(&call(&app, None, rpc, &workspace).await);
        let want = if access == Access::Public {
            Outcome::Allowed
        } else {
            Outcome::Unauthenticated
        };
        if got != want {
            failures.push(format!("{} anonymous: {got:?}, want {want:?}", rpc.path));
        }
        if want != Outcome::Allowed && (app.inbox.calls(), app.vault.calls()) != before {
            failures.push(format!("{} anonymous reached inbox or the vault", rpc.path));
        }

        for (name, role, token) in &callers {
            let want = match (access, role) {
                (Access::Public | Access::Authenticated, _) => Outcome::Allowed,
                (Access::Workspace(_), None) => Outcome::WorkspaceNotFound,
                (Access::Workspace(required), Some(role)) => {
                    let role = gateway::Role::from_proto(*role as i32).unwrap();
                    if role >= required {
                        Outcome::Allowed
                    } else {
                        Outcome::PermissionDenied
                    }
                }
            };
            let before = (app.inbox.calls(), app.vault.calls());
            let result = call(&app, Some(token), rpc, &workspace).await;
            let got = outcome(&result);
            if got != want {
                failures.push(format!(
                    "{} as {name}: {got:?} ({result:?}), want {want:?}",
                    rpc.path
                ));
            }
            if want != Outcome::Allowed && (app.inbox.calls(), app.vault.calls()) != before {
                failures.push(format!("{} as {name} reached inbox or the vault", rpc.path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
