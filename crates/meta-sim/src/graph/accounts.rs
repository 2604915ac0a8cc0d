//! `GET /{v}/me/accounts`: the Pages a person administers, each with a Page token, in
//! cursor-paged lists (meta-platform.md §6.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::errors::GraphError;
use super::nodes::{page_fields, requested};
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Node, TokenKind, World};

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;

/// Opaque cursor for a list position (base64 of the item id, like Meta's).
pub fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(c: &str) -> Result<String, GraphError> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| GraphError::invalid_param("Invalid cursor"))
}

/// The `accounts` edge of `node`.
pub fn accounts(
    world: &mut World,
    auth: &Auth,
    req: &GraphRequest,
    node: &Node,
) -> Result<Reply, GraphError> {
    let user_id = match node {
        Node::User(id) => id.clone(),
        // System users reach Pages through Business Manager assignments, not modelled here.
        Node::SystemUser(id) if auth.owner == *id => return Ok(Reply::Json(json!({"data": []}))),
        Node::SystemUser(id) => return Err(GraphError::unsupported(&req.method, id)),
        other => return Err(GraphError::nonexisting_field("accounts", other.type_name())),
    };
    if auth.kind != TokenKind::User || auth.owner != user_id {
        return Err(GraphError::unsupported(&req.method, &user_id));
    }
    if !auth.has("pages_show_list") {
        return Err(GraphError::missing_permission("pages_show_list"));
    }
    let fields = requested(
        req,
        &["access_token", "category", "category_list", "name", "id", "tasks"],
    )?;
    let ids: Vec<String> = world.pages_of(&user_id).iter().map(|p| p.id.clone()).collect();
    let (start, end) = window(req, &ids)?;
    let mut data = Vec::new();
    for id in &ids[start..end] {
        data.push(page_fields(world, auth, id, &fields, true)?);
    }
    Ok(Reply::Json(paged(req, data, &ids, start, end)))
}

/// The slice `[start, end)` a request's `limit`/`after`/`before` select.
pub fn window(req: &GraphRequest, ids: &[String]) -> Result<(usize, usize), GraphError> {
    let limit = match req.param("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| GraphError::invalid_param("Param limit must be a number"))?
            .clamp(1, MAX_LIMIT),
    };
    let position = |c: &str| -> Result<usize, GraphError> {
        let id = decode_cursor(c)?;
        ids.iter()
            .position(|i| *i == id)
            .ok_or_else(|| GraphError::invalid_param("Invalid cursor"))
    };
    let (start, end) = if let Some(after) = req.param("after") {
        let s = position(after)? + 1;
        (s, (s + limit).min(ids.len()))
    } else if let Some(before) = req.param("before") {
        let e = position(before)?;
        (e.saturating_sub(limit), e)
    } else {
        (0, limit.min(ids.len()))
    };
    Ok((start, end))
}

/// `{"data":[…],"paging":{"cursors":{…},"next":…,"previous":…}}`; links are absolute, on the
/// request's host, and keep the caller's other parameters.
pub fn paged(req: &GraphRequest, data: Vec<Value>, ids: &[String], start: usize, end: usize) -> Value {
    if data.is_empty() {
        return json!({ "data": data });
    }
    let first = cursor(&ids[start]);
    let last = cursor(&ids[end - 1]);
    let mut paging = json!({"cursors": {"before": first, "after": last}});
    let link = |key: &str, value: &str| -> Option<String> {
        let mut url = reqwest::Url::parse(&format!("{}{}", req.base_url(), req.path)).ok()?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                if k != "after" && k != "before" {
                    q.append_pair(k, v);
                }
            }
            q.append_pair(key, value);
        }
        Some(url.into())
    };
    if end < ids.len()
        && let Some(next) = link("after", &last)
    {
        paging["next"] = next.into();
    }
    if start > 0
        && let Some(prev) = link("before", &first)
    {
        paging["previous"] = prev.into();
    }
    json!({ "data": data, "paging": paging })
}
