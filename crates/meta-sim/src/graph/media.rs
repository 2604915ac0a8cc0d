//! Attachments: bytes the simulator serves on its own server under `/_media/{token}` with URLs
//! that expire on the simulated clock. Messenger/Instagram attachment URLs (a CDN on Meta) need
//! no token; WhatsApp media is looked up with `GET /{v}/{media-id}` (meta-platform.md §3.3),
//! whose short-lived URL needs the same Bearer token as the Graph call.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::errors::GraphError;
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Node, World, random_alnum};
use super::{GraphSim, WorldError, must};
use crate::ids;

/// How long a media URL works by default (WhatsApp documents ~5 minutes).
pub const DEFAULT_MEDIA_URL_TTL: Duration = Duration::from_secs(300);

/// Stored bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    bytes: Bytes,
    mime: String,
    sha256: String,
    /// For WhatsApp media: the phone number it was received on or uploaded to.
    phone_number_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Grant {
    blob: String,
    expires_at_ms: i64,
    /// WhatsApp: the WABA whose token must be presented as `Authorization: Bearer`.
    waba: Option<String>,
}

/// Blobs and URL grants.
#[derive(Debug)]
pub struct MediaStore {
    blobs: HashMap<String, Blob>,
    grants: HashMap<String, Grant>,
    /// Lifetime of a URL.
    pub ttl: Duration,
    /// `http://host:port` of the simulator's own server (set by `serve`).
    pub public_url: Option<String>,
}

impl Default for MediaStore {
    fn default() -> Self {
        Self {
            blobs: HashMap::new(),
            grants: HashMap::new(),
            ttl: DEFAULT_MEDIA_URL_TTL,
            public_url: None,
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

impl MediaStore {
    /// Store bytes; returns the media id.
    pub fn add(&mut self, bytes: Bytes, mime: &str, phone_number_id: Option<&str>) -> String {
        let id = ids::media_id();
        self.blobs.insert(
            id.clone(),
            Blob {
                sha256: sha256_hex(&bytes),
                bytes,
                mime: mime.to_owned(),
                phone_number_id: phone_number_id.map(str::to_owned),
            },
        );
        id
    }

    /// A fresh URL path token for a blob, valid for `ttl` from `now_ms`.
    pub fn grant(&mut self, blob: &str, now_ms: i64, waba: Option<&str>) -> String {
        let token = random_alnum(32);
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        self.grants.insert(
            token.clone(),
            Grant {
                blob: blob.to_owned(),
                expires_at_ms: now_ms.saturating_add(ttl),
                waba: waba.map(str::to_owned),
            },
        );
        token
    }

    /// A WhatsApp media item.
    pub fn whatsapp_media(&self, id: &str) -> Option<&Blob> {
        self.blobs.get(id).filter(|b| b.phone_number_id.is_some())
    }

    /// `base/_media/token`.
    pub fn url(&self, base: Option<&str>, token: &str) -> String {
        let base = base.or(self.public_url.as_deref()).unwrap_or("http://127.0.0.1");
        format!("{base}/_media/{token}")
    }
}

/// `/_media/{token}`.
pub fn routes() -> Router<GraphSim> {
    Router::new().route("/_media/{token}", axum::routing::get(download))
}

async fn download(State(sim): State<GraphSim>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let w = sim.lock();
    let Some(grant) = w.media.grants.get(&token) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    if w.now_ms() > grant.expires_at_ms {
        // What an expired fbcdn/lookaside URL answers.
        return (StatusCode::FORBIDDEN, "URL signature expired").into_response();
    }
    if let Some(waba) = &grant.waba {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let allowed = bearer
            .and_then(|t| w.authenticate(t).ok())
            .is_some_and(|auth| w.can_access_waba(&auth, waba));
        if !allowed {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
    }
    let Some(blob) = w.media.blobs.get(&grant.blob) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, blob.mime.clone())],
        blob.bytes.clone(),
    )
        .into_response()
}

/// `GET /{v}/{media-id}`: a fresh short-lived URL for a WhatsApp media item.
pub fn get(world: &mut World, auth: &Auth, req: &GraphRequest, id: &str) -> Result<Reply, GraphError> {
    let Some(blob) = world.media.whatsapp_media(id).cloned() else {
        return Err(GraphError::unsupported(&req.method, id));
    };
    let phone = blob.phone_number_id.clone().unwrap_or_default();
    let waba = world.phone(&phone).map(|p| p.waba_id.clone()).unwrap_or_default();
    if !world.can_access_waba(auth, &waba) {
        return Err(GraphError::unsupported(&req.method, id));
    }
    if !auth.has("whatsapp_business_messaging") && !auth.has("whatsapp_business_management") {
        return Err(GraphError::missing_permission("whatsapp_business_messaging"));
    }
    if req.param("phone_number_id").is_some_and(|p| p != phone) {
        return Err(GraphError::invalid_param(
            "The media does not belong to the phone number phone_number_id",
        ));
    }
    let now = world.now_ms();
    let token = world.media.grant(id, now, Some(&waba));
    let url = world.media.url(Some(&req.base_url()), &token);
    Ok(Reply::Json(json!({
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": blob.mime,
        "sha256": blob.sha256,
        "file_size": blob.bytes.len(),
        "id": id,
    })))
}

impl GraphSim {
    /// A Messenger/Instagram-style attachment URL on the simulator's own server serving
    /// `bytes`: 200 until it expires ([`Self::set_media_url_ttl`], default 5 minutes of the
    /// simulated clock), 403 after. The host is the one [`Self::serve`] listens on (or
    /// [`Self::set_public_url`]).
    pub fn media_url(&self, bytes: impl Into<Bytes>, mime: &str) -> String {
        let mut w = self.lock();
        let id = w.media.add(bytes.into(), mime, None);
        let now = w.now_ms();
        let token = w.media.grant(&id, now, None);
        w.media.url(None, &token)
    }

    /// Store WhatsApp media received on (or uploaded to) a phone number; returns its media id,
    /// for `GET /{v}/{media-id}` with a token of the number's WABA.
    ///
    /// # Panics
    /// On an unknown phone number id.
    pub fn add_whatsapp_media(&self, phone_number_id: &str, bytes: impl Into<Bytes>, mime: &str) -> String {
        let mut w = self.lock();
        let phone = match w.node(phone_number_id) {
            Ok(Node::Phone(_)) => Ok(()),
            _ => Err(WorldError::Unknown {
                what: "phone number",
                id: phone_number_id.to_owned(),
            }),
        };
        must(phone, "add_whatsapp_media");
        w.media.add(bytes.into(), mime, Some(phone_number_id))
    }

    /// How long media URLs work (default 5 minutes of the simulated clock).
    pub fn set_media_url_ttl(&self, ttl: Duration) {
        self.lock().media.ttl = ttl;
    }

    /// The base URL media links point at (`http://127.0.0.1:PORT`); [`Self::serve`] sets it
    /// from its listener, a caller serving [`Self::router`] itself sets it here.
    pub fn set_public_url(&self, url: impl Into<String>) {
        self.lock().media.public_url = Some(url.into().trim_end_matches('/').to_owned());
    }
}
