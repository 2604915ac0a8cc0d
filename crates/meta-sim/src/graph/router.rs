//! The HTTP edge: one catch-all handler parses the request, runs it against the world under
//! the lock, and [`respond`] turns the outcome into Meta's response (status, envelope,
//! `facebook-api-version`, `x-fb-trace-id`, `x-fb-rev`, usage headers). Paths are dispatched
//! by hand rather than by axum routes because Graph paths are `/{version?}/{node}/{edge?}`
//! with `me` and arbitrary ids in the node position.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ring::hmac;

use super::errors::GraphError;
use super::request::{GraphRequest, Reply, is_version};
use super::usage::{Throttled, throttle_error};
use super::world::{Auth, Node, TokenKind, World, random_alnum};
use super::{
    GraphSim, RecordedCall, accounts, admin, conversations, debug_token, handover, media, nodes, oauth, send,
    subscriptions, templates, whatsapp,
};

/// All routes.
pub fn router(sim: GraphSim) -> Router {
    admin::routes()
        .merge(media::routes())
        .fallback(graph)
        .with_state(sim)
}

async fn graph(
    State(sim): State<GraphSim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trace_id = random_alnum(23);
    let parsed = GraphRequest::parse(method.clone(), &uri, &headers, &body);
    let version = match &parsed {
        Ok(r) => r.version_or_default().to_owned(),
        Err(_) => uri
            .path()
            .split('/')
            .find(|s| is_version(s))
            .unwrap_or(super::DEFAULT_VERSION)
            .to_owned(),
    };
    let (result, usage) = {
        let mut world = sim.lock();
        match parsed {
            Err(e) => (Err(e), world.usage.headers(None)),
            Ok(req) => {
                let call = RecordedCall {
                    method: req.method.to_string(),
                    path: req.path.clone(),
                    had_appsecret_proof: req.param("appsecret_proof").is_some(),
                    token_kind: req
                        .token
                        .as_deref()
                        .and_then(|t| world.token_kind(t))
                        .map(|k| k.as_str().to_owned()),
                };
                world.calls.push(call);
                let mut throttled = None;
                let result = dispatch(&mut world, &req, &mut throttled);
                (result, world.usage.headers(throttled.as_ref()))
            }
        }
    };
    // Webhooks that follow the call (echoes, statuses…) go out in the background.
    sim.flush_webhooks();
    match &result {
        Ok(_) => tracing::debug!(%method, path = uri.path(), "graph call"),
        Err(e) => {
            tracing::debug!(%method, path = uri.path(), code = e.code, subcode = ?e.subcode, "graph error")
        }
    }
    respond(&version, &trace_id, &sim.inner.rev, result, usage)
}

/// Route a parsed request. Order as on Meta: token present → token valid → appsecret_proof →
/// rate limits → the object and the endpoint's own rules.
fn dispatch(
    world: &mut World,
    req: &GraphRequest,
    throttled: &mut Option<Throttled>,
) -> Result<Reply, GraphError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["dialog", "oauth"] => return Ok(oauth::dialog(world, req)),
        ["oauth", "access_token"] => return oauth::access_token(world, req),
        _ => {}
    }
    let token = req.token.as_deref().ok_or_else(GraphError::missing_token)?;
    let auth = world.authenticate(token)?;
    let is_debug = segs.as_slice() == ["debug_token"];
    check_proof(world, req, token, auth.kind, !is_debug)?;
    if is_debug {
        check_throttle(world, &[], throttled)?;
        return debug_token::handle(world, &auth, req);
    }
    let Some((&node_id, rest)) = segs.split_first() else {
        return Err(GraphError::unsupported(&req.method, ""));
    };
    if rest.len() > 1 {
        return Err(GraphError::unknown_path(&format!("/{}/", rest[1..].join("/"))));
    }
    let node = resolve(world, &auth, req, node_id)?;
    let mut touched: Vec<String> = vec![node.id().to_owned(), auth.owner.clone()];
    touched.extend(auth.page_id.clone());
    if let Node::Phone(id) = &node {
        touched.extend(world.phone(id).map(|p| p.waba_id.clone()));
    }
    let touched: Vec<&str> = touched.iter().map(String::as_str).collect();
    check_throttle(world, &touched, throttled)?;
    let m = &req.method;
    match rest.first().copied() {
        None if *m == Method::GET => match &node {
            Node::Waba(_) | Node::Phone(_) => whatsapp::get(world, &auth, req, &node),
            Node::Media(id) => media::get(world, &auth, req, id),
            Node::Message(id) => conversations::get_message(world, &auth, req, id),
            Node::Conversation(id) => conversations::get_conversation(world, &auth, req, id),
            _ => nodes::get(world, &auth, req, &node),
        },
        None => Err(GraphError::unsupported(m, node_id)),
        Some("accounts") if *m == Method::GET => accounts::accounts(world, &auth, req, &node),
        Some("phone_numbers") if *m == Method::GET => whatsapp::phone_numbers(world, &auth, req, &node),
        Some("subscribed_apps") => subscriptions::handle(world, &auth, req, &node),
        Some("messages") if *m == Method::POST => send::messages(world, &auth, req, &node),
        Some("messages") if *m == Method::GET => conversations::messages(world, &auth, req, &node),
        Some("conversations") if *m == Method::GET => conversations::list(world, &auth, req, &node),
        Some("message_templates") if *m == Method::GET => templates::list(world, &auth, req, &node),
        Some("thread_owner") if *m == Method::GET => handover::owner(world, &auth, req, &node),
        Some(
            action @ ("pass_thread_control"
            | "take_thread_control"
            | "request_thread_control"
            | "release_thread_control"),
        ) if *m == Method::POST => handover::control(world, &auth, req, &node, action),
        Some(edge) if *m == Method::GET => Err(GraphError::nonexisting_field(edge, node.type_name())),
        Some(_) => Err(GraphError::unsupported(m, node_id)),
    }
}

/// `me` is whoever the token speaks for; anything else must exist.
fn resolve(world: &World, auth: &Auth, req: &GraphRequest, id: &str) -> Result<Node, GraphError> {
    if id == "me" {
        return match (auth.kind, &auth.page_id) {
            (TokenKind::Page, Some(p)) => Ok(Node::Page(p.clone())),
            (TokenKind::SystemUser, _) => Ok(Node::SystemUser(auth.owner.clone())),
            (TokenKind::User, _) | (TokenKind::Page, None) => Ok(Node::User(auth.owner.clone())),
            (TokenKind::App, _) => Err(GraphError::no_current_user()),
        };
    }
    world
        .resolve(id)
        .ok_or_else(|| GraphError::unsupported(&req.method, id))
}

/// appsecret_proof = hex(HMAC-SHA256(key = app secret, msg = access token)). A present proof
/// must match; an absent one is refused when the app requires it (app tokens carry the secret
/// already and are exempt, as are OAuth and debug_token calls).
fn check_proof(
    world: &World,
    req: &GraphRequest,
    token: &str,
    kind: TokenKind,
    required: bool,
) -> Result<(), GraphError> {
    match req.param("appsecret_proof") {
        Some(proof) => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, world.config.app_secret.expose().as_bytes());
            let ok = hex::decode(proof).is_ok_and(|tag| hmac::verify(&key, token.as_bytes(), &tag).is_ok());
            if ok {
                Ok(())
            } else {
                Err(GraphError::invalid_proof())
            }
        }
        None if required && world.config.require_appsecret_proof && kind != TokenKind::App => {
            Err(GraphError::proof_required())
        }
        None => Ok(()),
    }
}

fn check_throttle(
    world: &mut World,
    touched: &[&str],
    throttled: &mut Option<Throttled>,
) -> Result<(), GraphError> {
    let mut usage = std::mem::take(&mut world.usage);
    let r = usage.check(touched, |id| {
        world.resolve(id).map_or("pages", |n| n.usage_type())
    });
    world.usage = usage;
    r.map_err(|t| {
        let e = throttle_error(t.code);
        *throttled = Some(t);
        e
    })
}

const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// The one place an outcome becomes HTTP.
fn respond(
    version: &str,
    trace_id: &str,
    rev: &str,
    result: Result<Reply, GraphError>,
    usage: Vec<(&'static str, String)>,
) -> Response {
    let mut resp = match result {
        Ok(Reply::Json(v)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
            v.to_string(),
        )
            .into_response(),
        Ok(Reply::Redirect(url)) => match HeaderValue::try_from(url) {
            Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
            Err(_) => (
                StatusCode::BAD_REQUEST,
                "redirect_uri cannot be used in a Location header",
            )
                .into_response(),
        },
        Ok(Reply::Html(status, html)) => {
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        Err(e) => {
            let mut r = (
                e.http_status(),
                [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)],
                e.to_body(trace_id).to_string(),
            )
                .into_response();
            if e.code == 190 {
                let v = format!(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                    e.message.replace('"', "'")
                );
                if let Ok(v) = HeaderValue::try_from(v) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            r
        }
    };
    let h = resp.headers_mut();
    for (name, value) in [
        ("facebook-api-version", version),
        ("x-fb-trace-id", trace_id),
        ("x-fb-rev", rev),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    for (name, value) in usage {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}
