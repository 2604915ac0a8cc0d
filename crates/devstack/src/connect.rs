//! Connecting the Meta simulator's demo channels through the gateway's `ChannelApi`, as a
//! workspace admin does in the frontend: Facebook Login for the demo Page (which brings the
//! Instagram account linked to it), then the demo WhatsApp Business Account with a system-user
//! token. Generic over the client's transport, so native gRPC (`make run`, the benchmark) and
//! gRPC-web (the end-to-end tests, as a browser) share one flow.

use std::time::Duration;

use scifer_meta_sim::demo::{DEMO_PAGE_ID, DEMO_WABA_ID};
use scifer_proto::{
    gateway::v1::{
        CompleteConnectRequest, ConfirmConnectRequest, ConnectWhatsAppRequest, StartConnectRequest,
        channel_api_client::ChannelApiClient, connect_whats_app_request::Credential,
    },
    tokenvault::v1::Channel as VaultChannel,
};
use tonic::codegen::{Body, Bytes, StdError};

/// Which step of connecting failed, and how.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {detail}")]
pub struct ConnectError {
    pub step: &'static str,
    pub detail: String,
}

fn failed(step: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ConnectError {
    move |e| ConnectError {
        step,
        detail: e.to_string(),
    }
}

/// Connects the demo Page and its Instagram account, and with `whatsapp_system_user_token` the
/// demo WhatsApp number too; returns the channels the vault connected. On a workspace that has
/// them already, the same accounts are reconnected (the vault keeps their channel ids).
pub async fn connect_demo_channels<T>(
    api: &mut ChannelApiClient<T>,
    workspace_id: &str,
    whatsapp_system_user_token: Option<&str>,
) -> Result<Vec<VaultChannel>, ConnectError>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    // 1. The dialog URL, with a single-use state the vault bound to this workspace and user.
    let started = api
        .start_connect(StartConnectRequest {
            workspace_id: workspace_id.to_string(),
        })
        .await
        .map_err(|e| failed("StartConnect")(&e))?
        .into_inner();
    // 2. The browser's visit: the simulated user consents at once and Meta redirects to the
    //    frontend's callback page with `code` and `state`, which we read instead of following.
    let (code, state) = consent(&started.dialog_url).await?;
    if state != started.state {
        return Err(failed("the Facebook Login dialog")(
            &"it returned another state than StartConnect issued",
        ));
    }
    // 3. The callback page hands both to the gateway and shows the Pages the user may connect.
    let candidates = api
        .complete_connect(CompleteConnectRequest {
            workspace_id: workspace_id.to_string(),
            state,
            code,
        })
        .await
        .map_err(|e| failed("CompleteConnect")(&e))?
        .into_inner();
    if !candidates.pages.iter().any(|p| p.page_id == DEMO_PAGE_ID) {
        let offered: Vec<_> = candidates.pages.iter().map(|p| p.page_id.as_str()).collect();
        return Err(failed("CompleteConnect")(&format!(
            "the login offers Pages {offered:?}, not the demo Page {DEMO_PAGE_ID}"
        )));
    }
    // 4. The user picks the demo Page; its Instagram account comes with it.
    let mut connected = api
        .confirm_connect(ConfirmConnectRequest {
            workspace_id: workspace_id.to_string(),
            session_id: candidates.session_id,
            page_ids: vec![DEMO_PAGE_ID.into()],
        })
        .await
        .map_err(|e| failed("ConfirmConnect")(&e))?
        .into_inner()
        .channels;
    if connected.is_empty() {
        return Err(failed("ConfirmConnect")(&"no channel was connected"));
    }
    // 5. WhatsApp, with the system-user token an admin copies from Business Manager.
    if let Some(token) = whatsapp_system_user_token {
        connected.extend(
            api.connect_whats_app(ConnectWhatsAppRequest {
                workspace_id: workspace_id.to_string(),
                waba_id: DEMO_WABA_ID.into(),
                credential: Some(Credential::SystemUserToken(token.into())),
            })
            .await
            .map_err(|e| failed("ConnectWhatsApp")(&e))?
            .into_inner()
            .channels,
        );
    }
    Ok(connected)
}

/// Opens the Facebook Login dialog without following its redirect and returns `code` and `state`
/// from the Location, after checking that it leads back to the `redirect_uri` the dialog was
/// opened with (what Meta guarantees and the frontend relies on).
async fn consent(dialog_url: &str) -> Result<(String, String), ConnectError> {
    let fail = failed("the Facebook Login dialog");
    let dialog = reqwest::Url::parse(dialog_url).map_err(|e| fail(&e))?;
    let redirect_uri = dialog
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| fail(&"the dialog URL has no redirect_uri"))?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(&e))?;
    let response = client.get(dialog).send().await.map_err(|e| fail(&e))?;
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
    let mut expected = reqwest::Url::parse(&redirect_uri).map_err(|e| fail(&e))?;
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
