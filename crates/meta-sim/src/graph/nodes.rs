//! `GET /{v}/{id}?fields=…` for Pages, Instagram accounts and people, with field expansion
//! (`instagram_business_account{id,username}`). WhatsApp nodes live in `whatsapp.rs`.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::fields::{self, Field};
use super::request::{GraphRequest, Reply};
use super::world::{ADMIN_TASKS, Auth, Node, TokenKind, World};

/// The requested fields, or `default` when the request names none.
pub fn requested(req: &GraphRequest, default: &[&str]) -> Result<Vec<Field>, GraphError> {
    match req.param("fields") {
        Some(f) => fields::parse(f),
        None => Ok(fields::plain(default)),
    }
}

/// Render `fields` with `value` (`Ok(None)` = omit); `id` is always included, as Graph does.
pub fn render(
    fields: &[Field],
    id: &str,
    mut value: impl FnMut(&Field) -> Result<Option<Value>, GraphError>,
) -> Result<Value, GraphError> {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = value(f)? {
            out.insert(f.name.clone(), v);
        }
    }
    out.insert("id".into(), id.into());
    Ok(Value::Object(out))
}

/// `GET` on a Page, IG account or person (`Node::Waba`/`Node::Phone` go to `whatsapp.rs`).
pub fn get(world: &mut World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    let v = match node {
        Node::Page(id) => {
            let fields = requested(req, &["name", "id"])?;
            page_fields(world, auth, id, &fields, false)?
        }
        Node::Ig(id) => {
            let page_id = world.ig(id).map(|i| i.page_id.clone()).unwrap_or_default();
            if !world.can_manage_page(auth, &page_id) {
                return Err(GraphError::unsupported(&req.method, id));
            }
            ig_fields(world, id, &requested(req, &["id"])?)?
        }
        Node::User(id) => {
            let name = world.user(id).map(|u| u.name.clone()).unwrap_or_default();
            person(id, &name, "User", &requested(req, &["name", "id"])?)?
        }
        Node::SystemUser(id) => {
            let name = world.system_user(id).map(|u| u.name.clone()).unwrap_or_default();
            person(id, &name, "User", &requested(req, &["name", "id"])?)?
        }
        Node::Waba(id) | Node::Phone(id) | Node::Message(id) | Node::Conversation(id) | Node::Media(id) => {
            return Err(GraphError::unsupported(&req.method, id));
        }
    };
    Ok(Reply::Json(v))
}

fn person(id: &str, name: &str, node_type: &str, fields: &[Field]) -> Result<Value, GraphError> {
    render(fields, id, |f| match f.name.as_str() {
        "id" => Ok(None),
        "name" => Ok(Some(name.into())),
        other => Err(GraphError::nonexisting_field(other, node_type)),
    })
}

/// A Page's fields. `access_token` yields a Page token for a user token of an admin (or the
/// caller's own Page token); `tasks` exists only on the `accounts` edge. The Instagram account
/// needs `instagram_basic` and is left out without it.
pub fn page_fields(
    world: &mut World,
    auth: &Auth,
    page_id: &str,
    fields: &[Field],
    accounts_edge: bool,
) -> Result<Value, GraphError> {
    let Some(page) = world.page(page_id).cloned() else {
        return Err(GraphError::unsupported(&http::Method::GET, page_id));
    };
    render(fields, page_id, |f| {
        Ok(match f.name.as_str() {
            "id" => None,
            "name" => Some(page.name.clone().into()),
            "category" => Some("Bakery".into()),
            "category_list" => Some(json!([{"id": "2203", "name": "Bakery"}])),
            "link" => Some(format!("https://www.facebook.com/{page_id}").into()),
            "tasks" if accounts_edge => world.manages(&auth.owner, page_id).then(|| json!(ADMIN_TASKS)),
            "access_token" => match (auth.kind, auth.id) {
                (TokenKind::User, Some(tid)) if world.manages(&auth.owner, page_id) => {
                    Some(world.page_token(tid, page_id).into())
                }
                (TokenKind::Page, Some(tid)) if auth.page_id.as_deref() == Some(page_id) => {
                    world.token_value(tid).map(Value::from)
                }
                _ => None,
            },
            "instagram_business_account" | "connected_instagram_account" => match &page.instagram {
                Some(ig) if auth.has("instagram_basic") => {
                    let sub = f.sub.clone().unwrap_or_else(|| fields::plain(&["id"]));
                    Some(ig_fields(world, ig, &sub)?)
                }
                _ => None,
            },
            other => return Err(GraphError::nonexisting_field(other, "Page")),
        })
    })
}

/// An Instagram account's fields.
pub fn ig_fields(world: &World, ig_id: &str, fields: &[Field]) -> Result<Value, GraphError> {
    let username = world.ig(ig_id).map(|i| i.username.clone()).unwrap_or_default();
    render(fields, ig_id, |f| match f.name.as_str() {
        "id" => Ok(None),
        "username" | "name" => Ok(Some(username.clone().into())),
        other => Err(GraphError::nonexisting_field(other, "ShadowIGUser")),
    })
}
