//! The demo workspace, set up the way a person would in the browser: sign up (or log in), create
//! the workspace, then connect the demo Page (with its Instagram account) and the demo WhatsApp
//! number through the gateway's ChannelApi. The gateway forwards to token-vault, which talks to
//! the Graph simulator; so the inbox's channels are real vault channels, with the vault's ids and
//! sealed tokens, announced on the bus by the vault itself.

use std::time::Duration;

use scifer_meta_sim::demo::{DEMO_PAGE_ID, DEMO_WABA_ID};
use scifer_proto::{
    events::v1::ChannelKind,
    gateway::v1::{
        CompleteConnectRequest, ConfirmConnectRequest, ConnectWhatsAppRequest, CreateWorkspaceRequest,
        ListWorkspacesRequest, LoginRequest, SignUpRequest, StartConnectRequest,
        account_api_client::AccountApiClient, channel_api_client::ChannelApiClient,
        connect_whats_app_request::Credential, workspace_api_client::WorkspaceApiClient,
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
    redirect_uri: &str,
    system_user_token: &str,
) -> Result<Vec<VaultChannel>, DevError> {
    let fail = setup("connecting the demo channels");
    let bearer = login.bearer.clone();
    let mut channels =
        ChannelApiClient::with_interceptor(login.gateway.clone(), move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        });
    let workspace_id = login.workspace_id.clone();

    // 1. The dialog URL, with a single-use state the vault bound to this workspace and user.
    let started = channels
        .start_connect(StartConnectRequest {
            workspace_id: workspace_id.clone(),
        })
        .await
        .map_err(|e| fail(&e))?
        .into_inner();
    // 2. The browser's visit: the simulated user consents at once and Meta redirects to the
    //    frontend's callback page with `code` and `state`, which we read instead of following.
    let (code, state) = consent(&started.dialog_url, redirect_uri).await?;
    if state != started.state {
        return Err(fail(
            &"the dialog returned another state than StartConnect issued",
        ));
    }
    // 3. The callback page hands both to the gateway and shows the Pages the user may connect.
    let candidates = channels
        .complete_connect(CompleteConnectRequest {
            workspace_id: workspace_id.clone(),
            state,
            code,
        })
        .await
        .map_err(|e| fail(&e))?
        .into_inner();
    if !candidates.pages.iter().any(|p| p.page_id == DEMO_PAGE_ID) {
        let offered: Vec<_> = candidates.pages.iter().map(|p| p.page_id.as_str()).collect();
        return Err(fail(&format!(
            "the login offers Pages {offered:?}, not the demo Page {DEMO_PAGE_ID}"
        )));
    }
    // 4. The user picks the demo Page; its Instagram account comes with it.
    let mut connected = channels
        .confirm_connect(ConfirmConnectRequest {
            workspace_id: workspace_id.clone(),
            session_id: candidates.session_id,
            page_ids: vec![DEMO_PAGE_ID.into()],
        })
        .await
        .map_err(|e| fail(&e))?
        .into_inner()
        .channels;
    // 5. WhatsApp, with the system-user token an admin copies from Business Manager.
    connected.extend(
        channels
            .connect_whats_app(ConnectWhatsAppRequest {
                workspace_id,
                waba_id: DEMO_WABA_ID.into(),
                credential: Some(Credential::SystemUserToken(system_user_token.into())),
            })
            .await
            .map_err(|e| fail(&e))?
            .into_inner()
            .channels,
    );
    Ok(connected)
}

/// Opens the Facebook Login dialog without following its redirect and returns `code` and `state`
/// from the Location, after checking it points at `redirect_uri`.
async fn consent(dialog_url: &str, redirect_uri: &str) -> Result<(String, String), DevError> {
    let fail = setup("the Facebook Login dialog");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(&e))?;
    let response = client.get(dialog_url).send().await.map_err(|e| fail(&e))?;
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(location) = location.filter(|_| status.is_redirection()) else {
        let body = response.text().await.unwrap_or_default();
        return Err(fail(&format!("answered {status} instead of a redirect: {body}")));
    };
    let back = reqwest::Url::parse(&location).map_err(|e| fail(&e))?;
    let mut expected = reqwest::Url::parse(redirect_uri).map_err(|e| fail(&e))?;
    expected.set_query(None);
    let mut landed = back.clone();
    landed.set_query(None);
    landed.set_fragment(None);
    if landed != expected {
        return Err(fail(&format!("redirected to {landed}, not to {expected}")));
    }
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        return Err(fail(&format!("the user did not consent: {error}")));
    }
    match (param("code"), param("state")) {
        (Some(code), Some(state)) => Ok((code, state)),
        _ => Err(fail(&"the redirect carries no code and state")),
    }
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
