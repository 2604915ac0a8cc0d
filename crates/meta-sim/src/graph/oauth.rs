//! Facebook Login: the `www.facebook.com` dialog (the consenting user clicks "Continue", or
//! cancels) and `GET /{v}/oauth/access_token` (code exchange, long-lived exchange, app token,
//! Embedded Signup code exchange).

use http::StatusCode;
use serde_json::json;

use super::errors::GraphError;
use super::request::{GraphRequest, Reply};
use super::world::{LONG_LIVED_SECS, World};

fn page(status: StatusCode, title: &str, detail: &str) -> Reply {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    Reply::Html(
        status,
        format!(
            "<!DOCTYPE html><html><head><title>{t}</title></head><body><h1>{t}</h1><p>{d}</p></body></html>",
            t = esc(title),
            d = esc(detail)
        ),
    )
}

/// Scopes as the dialog takes them: comma- or space-separated.
fn split_scopes(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `GET /{v}/dialog/oauth`: 302 back to `redirect_uri` with `code` and the unchanged `state`,
/// or with `error=access_denied` when the simulated user cancels. Problems the user would see
/// on facebook.com (unknown app, bad redirect) are a 400 HTML page, never a redirect.
pub fn dialog(world: &mut World, req: &GraphRequest) -> Reply {
    if req.param("client_id") != Some(world.config.app_id.as_str()) {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid App ID",
            "The provided app ID does not look like a valid app ID.",
        );
    }
    let Some(redirect_uri) = req.param("redirect_uri") else {
        return page(
            StatusCode::BAD_REQUEST,
            "Error",
            "The parameter redirect_uri is required.",
        );
    };
    let Ok(mut target) = reqwest::Url::parse(redirect_uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "URL blocked",
            "This redirect failed because the redirect URI is not a valid URL.",
        );
    };
    if req.param("response_type").is_some_and(|t| t != "code") {
        return page(
            StatusCode::BAD_REQUEST,
            "Unsupported response_type",
            "The simulator implements the code flow only (response_type=code).",
        );
    }
    let state = req.params.get("state");
    if world.dialog_denies {
        {
            let mut q = target.query_pairs_mut();
            q.append_pair("error", "access_denied")
                .append_pair("error_code", "200")
                .append_pair("error_description", "Permissions error")
                .append_pair("error_reason", "user_denied");
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        target.set_fragment(Some("_=_"));
        return Reply::Redirect(target.into());
    }
    // Facebook Login for Business sends `config_id` instead of `scope`: the configuration
    // decides the permissions, so the user grants everything they can.
    let requested = match (req.param("scope"), req.param("config_id")) {
        (Some(s), _) => Some(split_scopes(s)),
        (None, Some(_)) => None,
        (None, None) => Some(Vec::new()),
    };
    let code = match world.consent(redirect_uri, requested.as_deref()) {
        Ok(code) => code,
        Err(e) => return page(StatusCode::BAD_REQUEST, "Not logged in", &e.to_string()),
    };
    {
        let mut q = target.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    // Facebook appends this fragment to Login redirects.
    target.set_fragment(Some("_=_"));
    Reply::Redirect(target.into())
}

/// `GET|POST /{v}/oauth/access_token`.
pub fn access_token(world: &mut World, req: &GraphRequest) -> Result<Reply, GraphError> {
    let client_id = req.require("client_id")?;
    if client_id != world.config.app_id {
        return Err(GraphError::new(
            101,
            "Error validating application. Invalid application ID.",
        ));
    }
    let secret = req.require("client_secret")?;
    if secret != world.config.app_secret.expose() {
        return Err(GraphError::new(1, "Error validating client secret."));
    }
    match req.param("grant_type") {
        Some("fb_exchange_token") => {
            let short = req.require("fb_exchange_token")?;
            let auth = world.authenticate(short)?;
            let token = world.exchange_for_long_lived(&auth)?;
            Ok(Reply::Json(json!({
                "access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_SECS,
            })))
        }
        Some("client_credentials") => Ok(Reply::Json(json!({
            "access_token": world.issue_app_token(), "token_type": "bearer",
        }))),
        Some(other) => Err(GraphError::invalid_param(format!(
            "Unsupported grant_type '{other}'. Supported: fb_exchange_token, client_credentials"
        ))),
        None => {
            let code = req.require("code")?;
            let grant = world.redeem_code(code, req.param("redirect_uri"))?;
            let (token, expires_in) = world.token_for_grant(grant)?;
            let mut body = json!({"access_token": token, "token_type": "bearer"});
            if let Some(e) = expires_in {
                body["expires_in"] = e.into();
            }
            Ok(Reply::Json(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(split_scopes("a,b c,,"), ["a", "b", "c"]);
    }
}
