//! From a named action on a channel to the one Graph request it means. The path is built from the
//! channel's own account ids; ids taken from the caller's params must be plain numeric Graph ids,
//! so no caller can steer a channel's token to another object or endpoint.

use reqwest::Method;
use scifer_proto::{events::v1::ChannelKind, tokenvault::v1::EgressAction};
use serde_json::{Map, Value};

/// The channel an action runs for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: ChannelKind,
    pub account_id: &'a str,
    /// Page of an Instagram account, WABA of a phone number.
    pub parent_account_id: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// The business object whose rate-limit bucket the call spends.
    pub business_object: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("action {action} is not available on {kind} channels")]
    Unsupported {
        action: &'static str,
        kind: &'static str,
    },
    #[error("params_json must be a JSON object")]
    NotAnObject,
    #[error("params field `{0}` is required")]
    Missing(&'static str),
    #[error("params field `{0}` must be a numeric Graph id")]
    NotAnId(&'static str),
    #[error("params field `{0}` must be a string or number")]
    NotAScalar(&'static str),
    #[error("no action given")]
    NoAction,
}

pub fn plan(action: EgressAction, target: Target<'_>, params: Value) -> Result<Planned, PlanError> {
    let Value::Object(params) = params else {
        return Err(PlanError::NotAnObject);
    };
    use ChannelKind as K;
    use EgressAction as A;
    let unsupported = || PlanError::Unsupported {
        action: action.as_str_name(),
        kind: target.kind.as_str_name(),
    };
    // Messenger and Page-linked Instagram calls go through the Page.
    let page = match target.kind {
        K::Messenger => Some(target.account_id),
        K::Instagram => Some(target.parent_account_id),
        _ => None,
    };
    let post = |path: String, body: Map<String, Value>| Planned {
        method: Method::POST,
        path,
        query: Vec::new(),
        body: Some(Value::Object(body)),
        business_object: target.account_id.to_string(),
    };
    let get = |path: String, query: Vec<(&'static str, String)>| Planned {
        method: Method::GET,
        path,
        query,
        body: None,
        business_object: target.account_id.to_string(),
    };
    match action {
        A::Unspecified => Err(PlanError::NoAction),
        A::SendMessage => match (target.kind, page) {
            (K::Messenger | K::Instagram, Some(page)) => Ok(post(format!("{page}/messages"), params)),
            (K::Whatsapp, _) => {
                let mut body = params;
                body.insert("messaging_product".into(), Value::String("whatsapp".into()));
                Ok(post(format!("{}/messages", target.account_id), body))
            }
            _ => Err(unsupported()),
        },
        A::PassThreadControl | A::TakeThreadControl | A::RequestThreadControl | A::ReleaseThreadControl => {
            let Some(page) = page else {
                return Err(unsupported());
            };
            let edge = match action {
                A::PassThreadControl => "pass_thread_control",
                A::TakeThreadControl => "take_thread_control",
                A::RequestThreadControl => "request_thread_control",
                _ => "release_thread_control",
            };
            Ok(post(format!("{page}/{edge}"), params))
        }
        A::PublishPagePost => match target.kind {
            K::Messenger => Ok(post(format!("{}/feed", target.account_id), params)),
            _ => Err(unsupported()),
        },
        A::CreateMediaContainer => match target.kind {
            K::Instagram => Ok(post(format!("{}/media", target.account_id), params)),
            _ => Err(unsupported()),
        },
        A::GetContainerStatus => match target.kind {
            K::Instagram => {
                let id = graph_id(&params, "container_id")?;
                Ok(get(id, vec![("fields", "status_code,status".into())]))
            }
            _ => Err(unsupported()),
        },
        A::PublishMediaContainer => match target.kind {
            K::Instagram => {
                let creation = graph_id(&params, "creation_id")?;
                let mut planned = post(format!("{}/media_publish", target.account_id), Map::new());
                planned.query.push(("creation_id", creation));
                Ok(planned)
            }
            _ => Err(unsupported()),
        },
        A::ListConversations => match (target.kind, page) {
            (K::Messenger | K::Instagram, Some(page)) => {
                let platform = if target.kind == K::Instagram {
                    "instagram"
                } else {
                    "messenger"
                };
                let mut query = vec![("platform", platform.to_string())];
                query.extend(passthrough(&params, &["fields", "limit", "after", "user_id"])?);
                Ok(get(format!("{page}/conversations"), query))
            }
            _ => Err(unsupported()),
        },
        A::GetMedia => match target.kind {
            K::Whatsapp => {
                let id = graph_id(&params, "media_id")?;
                let mut planned = get(id, Vec::new());
                planned
                    .query
                    .push(("phone_number_id", target.account_id.to_string()));
                Ok(planned)
            }
            _ => Err(unsupported()),
        },
        A::ListMessageTemplates => match target.kind {
            K::Whatsapp => {
                let query = passthrough(&params, &["fields", "limit", "after", "status", "name"])?;
                let mut planned = get(format!("{}/message_templates", target.parent_account_id), query);
                planned.business_object = target.parent_account_id.to_string();
                Ok(planned)
            }
            _ => Err(unsupported()),
        },
    }
}

/// A numeric Graph id from the params (the only ids a caller may name).
fn graph_id(params: &Map<String, Value>, field: &'static str) -> Result<String, PlanError> {
    let raw = match params.get(field) {
        None | Some(Value::Null) => return Err(PlanError::Missing(field)),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(PlanError::NotAnId(field)),
    };
    if raw.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PlanError::NotAnId(field));
    }
    Ok(raw)
}

/// Whitelisted query parameters, as strings.
fn passthrough(
    params: &Map<String, Value>,
    allowed: &[&'static str],
) -> Result<Vec<(&'static str, String)>, PlanError> {
    let mut out = Vec::new();
    for key in allowed {
        match params.get(*key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push((*key, s.clone())),
            Some(Value::Number(n)) => out.push((*key, n.to_string())),
            Some(_) => return Err(PlanError::NotAScalar(key)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const PAGE: Target<'static> = Target {
        kind: ChannelKind::Messenger,
        account_id: "111",
        parent_account_id: "",
    };
    const IG: Target<'static> = Target {
        kind: ChannelKind::Instagram,
        account_id: "178",
        parent_account_id: "111",
    };
    const WA: Target<'static> = Target {
        kind: ChannelKind::Whatsapp,
        account_id: "106",
        parent_account_id: "102",
    };

    #[test]
    fn messages_go_to_the_page_for_messenger_and_instagram_and_to_the_number_for_whatsapp() {
        let body = json!({"recipient":{"id":"1"},"message":{"text":"hi"}});
        let p = plan(EgressAction::SendMessage, PAGE, body.clone()).unwrap();
        assert_eq!(
            (p.method, p.path.as_str(), p.business_object.as_str()),
            (Method::POST, "111/messages", "111")
        );
        let p = plan(EgressAction::SendMessage, IG, body.clone()).unwrap();
        assert_eq!(
            (p.path.as_str(), p.business_object.as_str()),
            ("111/messages", "178")
        );
        let p = plan(EgressAction::SendMessage, WA, json!({"to":"1","type":"text"})).unwrap();
        assert_eq!(p.path, "106/messages");
        assert_eq!(p.body.unwrap()["messaging_product"], "whatsapp");
    }

    #[test]
    fn caller_supplied_ids_must_be_numeric() {
        for bad in [
            json!("../me/accounts"),
            json!("12/feed"),
            json!(""),
            json!({"a":1}),
            json!("1?x=y"),
        ] {
            let err = plan(EgressAction::GetContainerStatus, IG, json!({"container_id": bad})).unwrap_err();
            assert_eq!(err, PlanError::NotAnId("container_id"));
        }
        let p = plan(
            EgressAction::GetContainerStatus,
            IG,
            json!({"container_id": 17889}),
        )
        .unwrap();
        assert_eq!(p.path, "17889");
        assert_eq!(
            plan(EgressAction::PublishMediaContainer, IG, json!({})).unwrap_err(),
            PlanError::Missing("creation_id")
        );
    }

    #[test]
    fn actions_outside_a_channel_kind_are_refused() {
        assert!(matches!(
            plan(EgressAction::PassThreadControl, WA, json!({})),
            Err(PlanError::Unsupported { .. })
        ));
        assert!(matches!(
            plan(EgressAction::CreateMediaContainer, PAGE, json!({})),
            Err(PlanError::Unsupported { .. })
        ));
        assert!(matches!(
            plan(EgressAction::ListMessageTemplates, PAGE, json!({})),
            Err(PlanError::Unsupported { .. })
        ));
        assert_eq!(
            plan(EgressAction::SendMessage, PAGE, json!([1])).unwrap_err(),
            PlanError::NotAnObject
        );
    }

    #[test]
    fn queries_pass_only_whitelisted_scalars() {
        let p = plan(
            EgressAction::ListConversations,
            IG,
            json!({"fields":"messages","limit":20,"access_token":"x"}),
        )
        .unwrap();
        assert_eq!(
            p.query,
            vec![
                ("platform", "instagram".into()),
                ("fields", "messages".into()),
                ("limit", "20".into())
            ]
        );
        let p = plan(EgressAction::ListMessageTemplates, WA, json!({})).unwrap();
        assert_eq!(
            (p.path.as_str(), p.business_object.as_str()),
            ("102/message_templates", "102")
        );
    }
}
