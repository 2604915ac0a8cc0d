//! The demo workspace, set up the way a person would in the browser: sign up (or log in), create
//! the workspace, then connect the demo Page (with its Instagram account) and the demo WhatsApp
//! number through the gateway's ChannelApi. The gateway forwards to token-vault, which talks to
//! the Graph simulator; so the inbox's channels are real vault channels, with the vault's ids and
//! sealed tokens, announced on the bus by the vault itself.

use std::time::Duration;

use scifer_proto::{
    events::v1::ChannelKind,
    gateway::v1::{
        CreateWorkspaceRequest, ListWorkspacesRequest, LoginRequest, SignUpRequest,
        account_api_client::AccountApiClient, channel_api_client::ChannelApiClient,
        workspace_api_client::WorkspaceApiClient,
    },
    tokenvault::v1::Channel as VaultChannel,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use crate::DevError;

/// The demo account `make run` signs up (or logs in to, when `.data/` already has it). A local demo
/// login, printed on start; real deployments create their own accounts.
pub const DEMO_EMAIL: &str = "demo@scifer.local";
pub const DEMO_PASSWORD: &str = "scifer-demo-password";
const DEMO_WORKSPACE_NAME: &str = "Demo Bakery";

/// A logged-in demo owner and their workspace.
pub struct DemoLogin {
    pub workspace_id: String,
    gateway: Channel,
    bearer: MetadataValue<Ascii>,
}

fn setup(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> DevError {
    move |e| DevError::Setup(format!("{what}: {e}"))
}

/// Signs the demo account up (or logs in), and creates its workspace unless it has one: the same
/// calls a new user's browser makes.
pub async fn login(gateway_addr: &str) -> Result<DemoLogin, DevError> {
    let fail = setup("creating the demo account");
    let gateway = Endpoint::from_shared(format!("http://{gateway_addr}"))
        .map_err(|e| fail(&e))?
        // Connecting goes to Meta (the simulator) through the vault: seconds at most.
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| fail(&e))?;
    let mut accounts = AccountApiClient::new(gateway.clone());
    let signed_up = accounts
        .sign_up(SignUpRequest {
            email: DEMO_EMAIL.into(),
            password: DEMO_PASSWORD.into(),
            name: "Demo Owner".into(),
        })
        .await;
    let session = match signed_up {
        Ok(session) => session.into_inner(),
        Err(status) if status.code() == tonic::Code::AlreadyExists => accounts
            .login(LoginRequest {
                email: DEMO_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
            })
            .await
            .map_err(|e| fail(&e))?
            .into_inner(),
        Err(status) => return Err(fail(&status)),
    };
    let bearer: MetadataValue<Ascii> = format!("Bearer {}", session.session_token)
        .parse()
        .map_err(|e| fail(&e))?;
    let mut login = DemoLogin {
        workspace_id: String::new(),
        gateway,
        bearer,
    };
    let bearer = login.bearer.clone();
    let mut workspaces =
        WorkspaceApiClient::with_interceptor(login.gateway.clone(), move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        });
    let existing = workspaces
        .list_workspaces(ListWorkspacesRequest {})
        .await
        .map_err(|e| fail(&e))?
        .into_inner()
        .workspaces;
    login.workspace_id = match existing.into_iter().find(|w| w.name == DEMO_WORKSPACE_NAME) {
        Some(found) => found.workspace_id,
        None => {
            workspaces
                .create_workspace(CreateWorkspaceRequest {
                    name: DEMO_WORKSPACE_NAME.into(),
                })
                .await
                .map_err(|e| fail(&e))?
                .into_inner()
                .workspace_id
        }
    };
    Ok(login)
}

/// Connects the demo Page (and the Instagram account linked to it) with Facebook Login, and the
/// demo WhatsApp Business Account with its system-user token. On a restart the same accounts are
/// reconnected: the vault keeps their channel ids and seals the simulator's fresh tokens.
pub async fn connect_channels(
    login: &DemoLogin,
    system_user_token: &str,
) -> Result<Vec<VaultChannel>, DevError> {
    let bearer = login.bearer.clone();
    let mut channels =
        ChannelApiClient::with_interceptor(login.gateway.clone(), move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        });
    scifer_devstack::connect::connect_demo_channels(
        &mut channels,
        &login.workspace_id,
        Some(system_user_token),
    )
    .await
    .map_err(|e| DevError::Setup(format!("connecting the demo channels: {e}")))
}

/// One line per channel for the start-up banner.
pub fn describe(channel: &VaultChannel) -> String {
    let kind = match ChannelKind::try_from(channel.kind) {
        Ok(ChannelKind::Messenger) => "Messenger",
        Ok(ChannelKind::Instagram) => "Instagram",
        Ok(ChannelKind::Whatsapp) => "WhatsApp",
        _ => "channel",
    };
    format!(
        "{kind:<9} {}: account {}, channel {}",
        channel.display_name, channel.account_id, channel.channel_id
    )
}
