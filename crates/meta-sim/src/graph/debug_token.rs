//! `GET /{v}/debug_token?input_token=…` with an app token (meta-platform.md §6.2).

use serde_json::{Value, json};

use super::SIM_APP_NAME;
use super::errors::GraphError;
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Inspection, TokenKind, World};

/// The endpoint: the caller's token must be an app token.
pub fn handle(world: &World, auth: &Auth, req: &GraphRequest) -> Result<Reply, GraphError> {
    if auth.kind != TokenKind::App {
        return Err(GraphError::invalid_param(
            "You must provide an app access token, or a user access token that is an owner or developer of the app",
        ));
    }
    let input = req.require("input_token")?;
    let data = match world.inspect(input) {
        None => json!({
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": false,
            "scopes": [],
            "granular_scopes": [],
        }),
        Some(i) => describe(world, &i),
    };
    Ok(Reply::Json(json!({ "data": data })))
}

fn describe(world: &World, i: &Inspection) -> Value {
    let mut d = json!({
        "app_id": world.config.app_id,
        "type": i.kind.as_str(),
        "application": SIM_APP_NAME,
        "is_valid": i.invalid.is_none(),
        "expires_at": i.expires_at,
        "scopes": i.scopes,
    });
    if i.kind != TokenKind::App {
        d["issued_at"] = i.issued_at.into();
        d["data_access_expires_at"] = i.data_access_expires_at.into();
        d["user_id"] = i.owner.clone().into();
        d["granular_scopes"] = granular_scopes(world, i);
    }
    if let Some(p) = &i.page_id {
        d["profile_id"] = p.clone().into();
    }
    if let Some((subcode, message)) = &i.invalid {
        d["error"] = json!({"code": 190, "message": message, "subcode": subcode});
    }
    d
}

/// Asset-scoped permissions list the assets they were granted on; the rest carry no targets.
fn granular_scopes(world: &World, i: &Inspection) -> Value {
    let pages: Vec<String> = match i.kind {
        TokenKind::User | TokenKind::Page => world.pages_of(&i.owner).iter().map(|p| p.id.clone()).collect(),
        TokenKind::SystemUser | TokenKind::App => Vec::new(),
    };
    let igs: Vec<String> = pages
        .iter()
        .filter_map(|p| world.page(p).and_then(|p| p.instagram.clone()))
        .collect();
    let wabas: Vec<String> = match i.kind {
        TokenKind::SystemUser => i.waba_ids.clone(),
        TokenKind::User | TokenKind::Page => world.wabas().iter().map(|w| w.id.clone()).collect(),
        TokenKind::App => Vec::new(),
    };
    let out: Vec<Value> = i
        .scopes
        .iter()
        .map(|s| {
            let targets = if s.starts_with("pages_") {
                Some(&pages)
            } else if s.starts_with("instagram_") {
                Some(&igs)
            } else if s.starts_with("whatsapp_") {
                Some(&wabas)
            } else {
                None
            };
            match targets {
                Some(t) => json!({"scope": s, "target_ids": t}),
                None => json!({"scope": s}),
            }
        })
        .collect();
    Value::Array(out)
}
