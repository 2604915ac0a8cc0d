//! The HTTP side: one `execute` path that every call goes through (throttle check, URL, auth,
//! proof, body limit, usage headers, error envelope, tracing), and the typed calls on top.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tracing::Instrument;
use url::Url;
use zeroize::Zeroizing;

use crate::config::GraphConfig;
use crate::error::{ErrorKind, GraphError, MetaError, truncate};
use crate::secret::{Token, appsecret_proof, redact};
use crate::types::{self, InstagramAccount, IssuedToken, PageAccount, PhoneNumber, TokenInfo};
use crate::usage::{UsagePolicy, UsageTracker, is_bucket_throttle};

/// Responses larger than this are refused (Graph bodies are small; this protects memory).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most `paging.next` links followed by one listing call.
pub const MAX_PAGES: usize = 50;

const USER_AGENT: &str = concat!("scifer-graph/", env!("CARGO_PKG_VERSION"));

/// A request for [`GraphClient::call`]: the vault's action RPCs (send, publish, thread control).
#[derive(Clone, Debug)]
pub struct GraphRequest<'a> {
    pub method: Method,
    /// Relative to the version, e.g. `me/messages` or `1234/messages`.
    pub path: &'a str,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Value>,
    /// The business object (Page, IG account, WABA) whose BUC bucket the call uses.
    pub business_object: Option<&'a str>,
}

impl<'a> GraphRequest<'a> {
    pub fn new(method: Method, path: &'a str) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: None,
            business_object: None,
        }
    }

    pub fn get(path: &'a str) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: &'a str, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn for_object(mut self, id: &'a str) -> Self {
        self.business_object = Some(id);
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GraphResponse {
    pub status: u16,
    pub body: Value,
}

/// The Graph client. Cheap to clone; clones share the connection pool and the usage tracker.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    config: Arc<GraphConfig>,
    usage: Arc<UsageTracker>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph_url", &self.config.graph_url.as_str())
            .field("version", &self.config.version)
            .field("app_id", &self.config.app_id)
            .finish_non_exhaustive()
    }
}

/// Who authenticates a call.
enum Auth<'a> {
    /// `Authorization: Bearer` + `appsecret_proof`.
    Bearer(&'a Token),
    /// OAuth exchanges: the app authenticates with `client_secret` in the query.
    None,
}

struct Call<'a> {
    method: Method,
    url: Url,
    /// Path with ids abstracted, for the span.
    template: Cow<'a, str>,
    auth: Auth<'a>,
    body: Option<&'a Value>,
    business_object: Option<&'a str>,
    /// Strings that must never reach an error message.
    secrets: Vec<&'a str>,
}

impl GraphClient {
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        let policy = UsagePolicy::new(config.throttle_threshold_pct);
        Self::with_usage_tracker(config, Arc::new(UsageTracker::new(policy)))
    }

    /// Like [`Self::new`] with a caller-built tracker (tests inject a clock or short delays).
    /// The tracker's policy replaces `config.throttle_threshold_pct`.
    pub fn with_usage_tracker(config: GraphConfig, usage: Arc<UsageTracker>) -> Result<Self, GraphError> {
        config.validate()?;
        // reqwest is built with `rustls-no-provider`: without a process default provider,
        // building a client panics. `Err` only means one is installed already (ring, by us or
        // by another component).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // Graph API calls never redirect; following one would send the proof and query
            // secrets to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            config: Arc::new(config),
            usage,
        })
    }

    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    pub fn usage(&self) -> &UsageTracker {
        &self.usage
    }

    /// The Facebook Login dialog URL (§6.1).
    pub fn dialog_url(&self, redirect_uri: &str, state: &str, scopes: &[&str]) -> Url {
        let mut url = self.config.dialog_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([self.config.version.as_str(), "dialog", "oauth"]);
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.app_id);
            q.append_pair("redirect_uri", redirect_uri);
            q.append_pair("state", state);
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(","));
            }
            q.append_pair("response_type", "code");
        }
        url
    }

    /// Exchange a login code for a user token. `redirect_uri: None` is the Embedded Signup
    /// exchange (no redirect URI was used), which yields a business system-user token.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<IssuedToken, GraphError> {
        let secret = self.config.app_secret.expose();
        let mut url = self.url(&["oauth", "access_token"])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.app_id);
            if let Some(redirect_uri) = redirect_uri {
                q.append_pair("redirect_uri", redirect_uri);
            }
            q.append_pair("client_secret", secret);
            q.append_pair("code", code);
        }
        let call = Call {
            method: Method::GET,
            url,
            template: "oauth/access_token".into(),
            auth: Auth::None,
            body: None,
            business_object: None,
            secrets: vec![secret, code],
        };
        let (_, body) = self.execute(call).await?;
        types::issued_token_from(body)
    }

    /// Exchange a short-lived user token for a long-lived (~60 days) one.
    pub async fn exchange_long_lived(&self, short: &Token) -> Result<IssuedToken, GraphError> {
        let secret = self.config.app_secret.expose();
        let mut url = self.url(&["oauth", "access_token"])?;
        url.query_pairs_mut()
            .append_pair("grant_type", "fb_exchange_token")
            .append_pair("client_id", &self.config.app_id)
            .append_pair("client_secret", secret)
            .append_pair("fb_exchange_token", short.expose());
        let call = Call {
            method: Method::GET,
            url,
            template: "oauth/access_token".into(),
            auth: Auth::None,
            body: None,
            business_object: None,
            secrets: vec![secret, short.expose()],
        };
        let (_, body) = self.execute(call).await?;
        types::issued_token_from(body)
    }

    /// Inspect a token with the app token `{app_id}|{app_secret}`. An invalid `input` is not an
    /// error: it comes back as `is_valid: false` with `error` set.
    pub async fn debug_token(&self, input: &Token) -> Result<TokenInfo, GraphError> {
        let secret = self.config.app_secret.expose();
        let app_token = Token::new(format!("{}|{}", self.config.app_id, secret));
        let mut url = self.url(&["debug_token"])?;
        // Meta only takes the inspected token as a query parameter.
        url.query_pairs_mut().append_pair("input_token", input.expose());
        let call = Call {
            method: Method::GET,
            url,
            template: "debug_token".into(),
            auth: Auth::Bearer(&app_token),
            body: None,
            business_object: None,
            secrets: vec![secret, input.expose(), app_token.expose()],
        };
        let (_, body) = self.execute(call).await?;
        types::token_info_from(&body)
    }

    /// The Pages the user granted, each with its Page token. Follows `paging.next` (same origin
    /// as `graph_url` only) up to [`MAX_PAGES`].
    pub async fn me_accounts(&self, user: &Token) -> Result<Vec<PageAccount>, GraphError> {
        let mut url = self.url(&["me", "accounts"])?;
        url.query_pairs_mut()
            .append_pair("fields", "id,name,access_token,tasks")
            .append_pair("limit", "100");
        let mut pages = Vec::new();
        self.paged(url, "me/accounts", user, None, |body| {
            pages.extend(types::page_accounts_from(body)?);
            Ok(())
        })
        .await?;
        Ok(pages)
    }

    /// The Instagram professional account linked to a Page, if any.
    pub async fn page_instagram_account(
        &self,
        page_id: &str,
        page: &Token,
    ) -> Result<Option<InstagramAccount>, GraphError> {
        let mut url = self.url(&[segment(page_id)?])?;
        url.query_pairs_mut()
            .append_pair("fields", "instagram_business_account{id,username}");
        let (_, body) = self
            .execute(self.bearer_call(Method::GET, url, "{page}", page, Some(page_id)))
            .await?;
        types::instagram_from(&body)
    }

    /// Subscribe our app to a Page's (`fields`) or WABA's (no fields) webhooks.
    pub async fn subscribe_app(
        &self,
        object_id: &str,
        fields: &[&str],
        token: &Token,
    ) -> Result<(), GraphError> {
        let mut url = self.url(&[segment(object_id)?, "subscribed_apps"])?;
        if !fields.is_empty() {
            url.query_pairs_mut()
                .append_pair("subscribed_fields", &fields.join(","));
        }
        let (_, body) = self
            .execute(self.bearer_call(
                Method::POST,
                url,
                "{object}/subscribed_apps",
                token,
                Some(object_id),
            ))
            .await?;
        types::success_flag(&body, "subscribed_apps")
    }

    pub async fn unsubscribe_app(&self, object_id: &str, token: &Token) -> Result<(), GraphError> {
        let url = self.url(&[segment(object_id)?, "subscribed_apps"])?;
        let (_, body) = self
            .execute(self.bearer_call(
                Method::DELETE,
                url,
                "{object}/subscribed_apps",
                token,
                Some(object_id),
            ))
            .await?;
        types::success_flag(&body, "subscribed_apps")
    }

    /// The fields our app (by `app_id`) is subscribed to on the object; `None` if it is not
    /// subscribed. WhatsApp entries list no fields, so a subscribed WABA gives `Some(vec![])`.
    pub async fn subscribed_fields(
        &self,
        object_id: &str,
        token: &Token,
    ) -> Result<Option<Vec<String>>, GraphError> {
        let url = self.url(&[segment(object_id)?, "subscribed_apps"])?;
        let (_, body) = self
            .execute(self.bearer_call(
                Method::GET,
                url,
                "{object}/subscribed_apps",
                token,
                Some(object_id),
            ))
            .await?;
        types::subscribed_fields_from(&body, &self.config.app_id)
    }

    pub async fn waba_phone_numbers(
        &self,
        waba_id: &str,
        token: &Token,
    ) -> Result<Vec<PhoneNumber>, GraphError> {
        let mut url = self.url(&[segment(waba_id)?, "phone_numbers"])?;
        url.query_pairs_mut()
            .append_pair("fields", "id,display_phone_number,verified_name");
        let mut numbers = Vec::new();
        self.paged(url, "{waba}/phone_numbers", token, Some(waba_id), |body| {
            numbers.extend(types::phone_numbers_from(body)?);
            Ok(())
        })
        .await?;
        Ok(numbers)
    }

    pub async fn waba_name(&self, waba_id: &str, token: &Token) -> Result<String, GraphError> {
        let mut url = self.url(&[segment(waba_id)?])?;
        url.query_pairs_mut().append_pair("fields", "name");
        let (_, body) = self
            .execute(self.bearer_call(Method::GET, url, "{waba}", token, Some(waba_id)))
            .await?;
        body.get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GraphError::Decode("WABA response has no name".into()))
    }

    /// Generic egress: `method {graph_url}/{version}/{path}?{query}` with the token as bearer.
    /// Returns Meta's JSON for 2xx; Meta errors come back as [`GraphError::Meta`].
    pub async fn call(&self, req: GraphRequest<'_>, token: &Token) -> Result<GraphResponse, GraphError> {
        let segments = path_segments(req.path)?;
        let mut url = self.url(&segments)?;
        if !req.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (key, value) in &req.query {
                if is_credential_param(key) {
                    return Err(GraphError::Config(format!(
                        "query parameter {key} is not allowed: the client adds credentials itself"
                    )));
                }
                q.append_pair(key, value);
            }
        }
        let template = path_template(&segments);
        let call = Call {
            body: req.body.as_ref(),
            ..self.bearer_call(req.method, url, template, token, req.business_object)
        };
        let (status, body) = self.execute(call).await?;
        Ok(GraphResponse { status, body })
    }

    fn bearer_call<'a>(
        &self,
        method: Method,
        url: Url,
        template: impl Into<Cow<'a, str>>,
        token: &'a Token,
        business_object: Option<&'a str>,
    ) -> Call<'a> {
        Call {
            method,
            url,
            template: template.into(),
            auth: Auth::Bearer(token),
            body: None,
            business_object,
            secrets: vec![token.expose()],
        }
    }

    /// `{graph_url}/{version}/{segments...}`; each segment is percent-encoded on its own.
    fn url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        let mut url = self.config.graph_url.clone();
        url.path_segments_mut()
            .map_err(|()| GraphError::Config("graph_url cannot be a base URL".into()))?
            .pop_if_empty()
            .push(&self.config.version)
            .extend(segments);
        Ok(url)
    }

    /// GET `first` and every same-origin `paging.next` after it, handing each body to `each`.
    async fn paged(
        &self,
        first: Url,
        template: &'static str,
        token: &Token,
        business_object: Option<&str>,
        mut each: impl FnMut(&mut Value) -> Result<(), GraphError>,
    ) -> Result<(), GraphError> {
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let (_, mut body) = self
                .execute(self.bearer_call(Method::GET, url, template, token, business_object))
                .await?;
            each(&mut body)?;
            let next = body
                .get("paging")
                .and_then(|p| p.get("next"))
                .and_then(Value::as_str);
            let Some(next) = next else {
                return Ok(());
            };
            url = self.next_page_url(next)?;
        }
        Err(GraphError::Decode(format!(
            "{template}: more than {MAX_PAGES} pages of results"
        )))
    }

    /// A `paging.next` link is followed only on our Graph origin: anywhere else it would
    /// receive the bearer token and the proof. Credentials in its query are dropped (the
    /// request adds its own).
    fn next_page_url(&self, next: &str) -> Result<Url, GraphError> {
        let url = Url::parse(next).map_err(|_| GraphError::Decode("paging.next is not a URL".into()))?;
        if !same_origin(&url, &self.config.graph_url) {
            return Err(GraphError::Decode(
                "paging.next points outside graph_url; not followed".into(),
            ));
        }
        Ok(strip_credentials(url))
    }

    /// The single path every request takes.
    async fn execute(&self, call: Call<'_>) -> Result<(u16, Value), GraphError> {
        let span = tracing::info_span!(
            "graph.call",
            method = %call.method,
            path = %call.template,
            status = tracing::field::Empty,
            meta_code = tracing::field::Empty,
            meta_subcode = tracing::field::Empty,
        );
        self.execute_inner(call).instrument(span).await
    }

    async fn execute_inner(&self, call: Call<'_>) -> Result<(u16, Value), GraphError> {
        let span = tracing::Span::current();
        let Call {
            method,
            mut url,
            template: _,
            auth,
            body,
            business_object,
            secrets,
        } = call;

        let delay = self.usage.admit(business_object).inspect_err(|e| {
            tracing::warn!(error = %e, "Graph call refused locally");
        })?;
        if !delay.is_zero() {
            tracing::debug!(
                delay_ms = delay.as_millis() as u64,
                "usage above threshold, slowing down"
            );
            tokio::time::sleep(delay).await;
        }

        let proof;
        let mut secrets = secrets;
        if let Auth::Bearer(token) = auth {
            proof = appsecret_proof(&self.config.app_secret, token.expose());
            url.query_pairs_mut().append_pair("appsecret_proof", &proof);
            secrets.push(proof.as_str());
        }
        let mut request = self.http.request(method, url);
        if let Auth::Bearer(token) = auth {
            // bearer_auth marks the header value sensitive (kept out of hyper's Debug output).
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }

        let response = request.send().await.map_err(|e| transport_error(e, &secrets))?;
        let status = response.status().as_u16();
        span.record("status", status);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let app_usage = header("x-app-usage");
        let buc_usage = header("x-business-use-case-usage");
        let trace_id = header("x-fb-trace-id");
        let retry_after_header = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);

        let bytes = read_limited(response, &secrets).await?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        let success = (200..300).contains(&status);
        let envelope = json.as_ref().and_then(|v| MetaError::from_envelope(v, status));
        self.usage.record_headers(
            business_object,
            app_usage.as_deref(),
            buc_usage.as_deref(),
            success && envelope.is_none(),
        );

        if let Some(mut err) = envelope {
            err.message = redact(&err.message, &secrets);
            err.fbtrace_id = err.fbtrace_id.or(trace_id);
            if err.kind == ErrorKind::Throttled {
                err.retry_after = match self.usage.record_throttle(err.code, business_object) {
                    Some((scope, retry_after)) => {
                        tracing::warn!(%scope, retry_after_s = retry_after.as_secs(), code = err.code, "Meta throttled; bucket blocked");
                        Some(retry_after)
                    }
                    None if is_bucket_throttle(err.code) => {
                        Some(retry_after_header.unwrap_or(self.usage.policy().initial_backoff))
                    }
                    None => retry_after_header,
                };
            }
            span.record("meta_code", err.code);
            if let Some(sub) = err.subcode {
                span.record("meta_subcode", sub);
            }
            tracing::debug!(kind = ?err.kind, "Graph returned an error");
            return Err(GraphError::Meta(err));
        }
        if !success {
            let what = format!("HTTP {status} without a Graph error body");
            // A gateway in front of Graph failing or shedding load: retryable like a transport
            // failure. Other statuses mean we do not understand the answer.
            return Err(if status >= 500 || status == 429 {
                GraphError::Transport(what)
            } else {
                GraphError::Decode(what)
            });
        }
        self.usage.record_success(business_object);
        match json {
            Some(v) => Ok((status, v)),
            None if bytes.iter().all(u8::is_ascii_whitespace) => Ok((status, Value::Null)),
            None => Err(GraphError::Decode(format!(
                "HTTP {status} with a body that is not JSON"
            ))),
        }
    }
}

/// Read the body, refusing more than [`MAX_BODY_BYTES`]. The buffer is wiped on drop (it may
/// hold tokens).
/// A media file being downloaded with a channel's token (WhatsApp media URLs need it). Chunks
/// are handed out as they arrive, so a large video is never held whole.
pub struct MediaDownload {
    response: reqwest::Response,
    pub mime_type: Option<String>,
    pub declared_len: Option<u64>,
    max_bytes: u64,
    read: u64,
    token: Token,
}

impl std::fmt::Debug for MediaDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDownload")
            .field("mime_type", &self.mime_type)
            .field("declared_len", &self.declared_len)
            .finish_non_exhaustive()
    }
}

impl MediaDownload {
    /// The next chunk, `None` at the end; more than `max_bytes` in all is an error.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, GraphError> {
        let chunk = self
            .response
            .chunk()
            .await
            .map_err(|e| transport_error(e, &[self.token.expose()]))?;
        if let Some(c) = &chunk {
            self.read += c.len() as u64;
            if self.read > self.max_bytes {
                return Err(GraphError::Decode(format!(
                    "media is larger than {} bytes",
                    self.max_bytes
                )));
            }
        }
        Ok(chunk)
    }
}

impl GraphClient {
    /// Starts downloading a media URL that Graph returned (WhatsApp `GET /{media-id}` → `url`),
    /// with the channel's token as the bearer. The caller decides which hosts it trusts; no
    /// redirect is followed, and nothing but the bearer is sent.
    pub async fn download_media(
        &self,
        url: Url,
        token: &Token,
        max_bytes: u64,
    ) -> Result<MediaDownload, GraphError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| transport_error(e, &[token.expose()]))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(GraphError::Transport(format!(
                "media download answered HTTP {status}"
            )));
        }
        let declared_len = response.content_length();
        if declared_len.is_some_and(|n| n > max_bytes) {
            return Err(GraphError::Decode(format!(
                "media is larger than {max_bytes} bytes"
            )));
        }
        let mime_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(MediaDownload {
            response,
            mime_type,
            declared_len,
            max_bytes,
            read: 0,
            token: Token::new(token.expose().to_string()),
        })
    }
}

async fn read_limited(
    mut response: reqwest::Response,
    secrets: &[&str],
) -> Result<Zeroizing<Vec<u8>>, GraphError> {
    let too_large = || GraphError::Decode(format!("response body exceeds {MAX_BODY_BYTES} bytes"));
    let declared = response.content_length().unwrap_or(0);
    if declared > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    // Reserve up front so growth does not leave unwiped copies behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(declared as usize));
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(e, secrets))? {
        if buf.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// reqwest errors carry the request URL (query secrets included): strip it, keep the cause
/// chain for diagnosis, and redact whatever might still echo a secret.
fn transport_error(err: reqwest::Error, secrets: &[&str]) -> GraphError {
    let err = err.without_url();
    let mut msg = if err.is_timeout() {
        format!("timed out ({err})")
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
        source = cause.source();
    }
    GraphError::Transport(redact(&truncate(&msg, 500), secrets))
}

fn is_credential_param(key: &str) -> bool {
    matches!(
        key,
        "access_token" | "appsecret_proof" | "client_secret" | "input_token"
    )
}

fn strip_credentials(mut url: Url) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_credential_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    url
}

pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.username().is_empty()
        && a.password().is_none()
}

/// An id used as one path segment.
fn segment(id: &str) -> Result<&str, GraphError> {
    if id.is_empty() || matches!(id, "." | "..") || id.contains(['/', '?', '#']) {
        return Err(GraphError::Config(format!(
            "{:?} is not a valid Graph object id",
            truncate(id, 64)
        )));
    }
    Ok(id)
}

fn path_segments(path: &str) -> Result<Vec<&str>, GraphError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    if path.is_empty() {
        return Err(GraphError::Config("empty Graph path".into()));
    }
    path.split('/').map(segment).collect()
}

/// `1234/messages` → `{id}/messages`: numeric (and very long) segments are ids.
fn path_template(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 40 {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let base = Url::parse("https://graph.facebook.com").unwrap();
        let ok = Url::parse("https://graph.facebook.com:443/v25.0/me/accounts?after=x").unwrap();
        assert!(same_origin(&ok, &base));
        for bad in [
            "http://graph.facebook.com/v25.0/me/accounts",
            "https://graph.facebook.com.evil.example/v25.0/me/accounts",
            "https://graph.facebook.com:8443/v25.0/me/accounts",
            "https://evil.example/v25.0/me/accounts",
            "https://user:pw@graph.facebook.com/v25.0/me/accounts",
        ] {
            assert!(!same_origin(&Url::parse(bad).unwrap(), &base), "{bad}");
        }
    }

    #[test]
    fn credentials_are_stripped_from_next_links() {
        let url = Url::parse(
            "https://g.example/v25.0/me/accounts?access_token=SECRET&limit=100&appsecret_proof=P&after=QVFI",
        )
        .unwrap();
        assert_eq!(
            strip_credentials(url).as_str(),
            "https://g.example/v25.0/me/accounts?limit=100&after=QVFI"
        );
    }

    #[test]
    fn path_segments_are_validated() {
        assert_eq!(path_segments("me/messages").unwrap(), vec!["me", "messages"]);
        assert_eq!(path_segments("/123/messages").unwrap(), vec!["123", "messages"]);
        for bad in [
            "",
            "me//messages",
            "../x",
            "me/./messages",
            "me/messages?x=1",
            "a#b",
        ] {
            assert!(matches!(path_segments(bad), Err(GraphError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn templates_hide_ids() {
        assert_eq!(path_template(&["1234", "messages"]), "{id}/messages");
        assert_eq!(path_template(&["me", "messages"]), "me/messages");
        assert_eq!(
            path_template(&["17841400000000000", "media_publish"]),
            "{id}/media_publish"
        );
    }
}
