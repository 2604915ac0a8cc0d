//! `/{v}/{page-id}/subscribed_apps` and `/{v}/{waba-id}/subscribed_apps` (meta-platform.md
//! §6.4): POST subscribes the app, GET lists it, DELETE unsubscribes.

use http::Method;
use serde_json::json;

use super::SIM_APP_NAME;
use super::errors::GraphError;
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Node, TokenKind, WabaSubscription, World};

/// Page webhook fields that deliver messaging events: subscribing needs `pages_messaging`.
const MESSAGING_FIELDS: &[&str] = &[
    "messages",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "messaging_account_linking",
    "messaging_feedback",
    "messaging_customer_information",
    "messaging_game_plays",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "message_edits",
    "standby",
];

/// Other Page fields the app may subscribe to.
const OTHER_PAGE_FIELDS: &[&str] = &[
    "feed",
    "mention",
    "ratings",
    "conversations",
    "inbox_labels",
    "leadgen",
    "live_videos",
    "videos",
    "photos",
    "name",
    "picture",
    "category",
    "description",
    "website",
    "email",
    "phone",
    "location",
    "hours",
];

/// What a WABA subscription covers when the POST names no fields: the app-level WhatsApp
/// fields configured in the App Dashboard.
pub const DEFAULT_WABA_FIELDS: &[&str] = &[
    "account_update",
    "message_template_status_update",
    "messages",
    "phone_number_name_update",
    "phone_number_quality_update",
];

fn split_fields(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !out.iter().any(|o| o == f) {
            out.push(f.to_owned());
        }
    }
    out
}

/// The `subscribed_apps` edge of `node`.
pub fn handle(world: &mut World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    match node {
        Node::Page(id) => page(world, auth, req, id),
        Node::Waba(id) => waba(world, auth, req, id),
        other if req.method == Method::GET => Err(GraphError::nonexisting_field(
            "subscribed_apps",
            other.type_name(),
        )),
        other => Err(GraphError::unsupported(&req.method, other.id())),
    }
}

fn page(world: &mut World, auth: &Auth, req: &GraphRequest, page_id: &str) -> Result<Reply, GraphError> {
    if auth.kind != TokenKind::Page {
        return Err(GraphError::page_token_required());
    }
    if auth.page_id.as_deref() != Some(page_id) {
        return Err(GraphError::permissions_error());
    }
    if req.method != Method::GET && !auth.has("pages_manage_metadata") {
        return Err(GraphError::missing_permission("pages_manage_metadata"));
    }
    let app_id = world.config.app_id.clone();
    match req.method {
        Method::GET => {
            let data = match world.page(page_id).and_then(|p| p.subscription.clone()) {
                Some(fields) => {
                    vec![json!({"id": app_id, "name": SIM_APP_NAME, "subscribed_fields": fields})]
                }
                None => Vec::new(),
            };
            Ok(Reply::Json(json!({ "data": data })))
        }
        Method::POST => {
            let fields = split_fields(req.require("subscribed_fields")?);
            for f in &fields {
                let messaging = MESSAGING_FIELDS.contains(&f.as_str());
                if !messaging && !OTHER_PAGE_FIELDS.contains(&f.as_str()) {
                    let all: Vec<&str> = MESSAGING_FIELDS
                        .iter()
                        .chain(OTHER_PAGE_FIELDS)
                        .copied()
                        .collect();
                    return Err(GraphError::invalid_param(format!(
                        "Param subscribed_fields must be one of {{{}}} - got \"{f}\"",
                        all.join(", ")
                    )));
                }
                if messaging && !auth.has("pages_messaging") {
                    return Err(GraphError::new(
                        200,
                        format!(
                            "(#200) To subscribe to the {f} field, one of these permissions is needed: pages_messaging"
                        ),
                    ));
                }
            }
            if let Some(p) = world.page_mut(page_id) {
                p.subscription = Some(fields);
            }
            Ok(Reply::Json(json!({"success": true})))
        }
        Method::DELETE => {
            if let Some(p) = world.page_mut(page_id) {
                p.subscription = None;
            }
            Ok(Reply::Json(json!({"success": true})))
        }
        _ => Err(GraphError::unsupported(&req.method, page_id)),
    }
}

fn waba(world: &mut World, auth: &Auth, req: &GraphRequest, waba_id: &str) -> Result<Reply, GraphError> {
    if !world.can_access_waba(auth, waba_id) {
        return Err(GraphError::unsupported(&req.method, waba_id));
    }
    if !auth.has("whatsapp_business_management") {
        return Err(GraphError::missing_permission("whatsapp_business_management"));
    }
    let app_id = world.config.app_id.clone();
    match req.method {
        Method::GET => {
            let data = match world.waba(waba_id).and_then(|w| w.subscription.clone()) {
                Some(sub) => {
                    let mut entry = json!({"whatsapp_business_api_data": {
                        "link": format!("https://www.facebook.com/games/?app_id={app_id}"),
                        "name": SIM_APP_NAME,
                        "id": app_id,
                    }});
                    if let Some(uri) = sub.override_callback_uri {
                        entry["override_callback_uri"] = uri.into();
                    }
                    vec![entry]
                }
                None => Vec::new(),
            };
            Ok(Reply::Json(json!({ "data": data })))
        }
        Method::POST => {
            let fields = match req.param("subscribed_fields") {
                Some(f) => split_fields(f),
                None => DEFAULT_WABA_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
            };
            let override_callback_uri = match req.param("override_callback_uri") {
                Some(uri) => {
                    req.require("verify_token")?;
                    if reqwest::Url::parse(uri).is_err() {
                        return Err(GraphError::invalid_param(
                            "Param override_callback_uri must be a valid URL",
                        ));
                    }
                    Some(uri.to_owned())
                }
                None => None,
            };
            if let Some(w) = world.waba_mut(waba_id) {
                w.subscription = Some(WabaSubscription {
                    fields,
                    override_callback_uri,
                });
            }
            Ok(Reply::Json(json!({"success": true})))
        }
        Method::DELETE => {
            if let Some(w) = world.waba_mut(waba_id) {
                w.subscription = None;
            }
            Ok(Reply::Json(json!({"success": true})))
        }
        _ => Err(GraphError::unsupported(&req.method, waba_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_split_trimmed_and_deduplicated() {
        assert_eq!(split_fields("messages, feed,messages,"), ["messages", "feed"]);
    }
}
