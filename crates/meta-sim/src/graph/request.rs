//! A Graph request as the handlers see it: path split around the version, parameters merged
//! from the query string and the body (Graph accepts both), and the access token from either
//! `Authorization` or `access_token`.

use std::collections::BTreeMap;

use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

use super::errors::GraphError;

/// The version reported for unversioned calls (Meta uses the app's default version).
pub const DEFAULT_VERSION: &str = "v25.0";

/// What a handler answers on success.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 with a JSON body.
    Json(Value),
    /// 302 to a URL (the OAuth dialog).
    Redirect(String),
    /// An HTML page (the dialog's error pages).
    Html(StatusCode, String),
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// Method.
    pub method: Method,
    /// Path without query.
    pub path: String,
    /// `vNN.0` if the path had one.
    pub version: Option<String>,
    /// Path segments after the version.
    pub segments: Vec<String>,
    /// The query string's pairs in order (for paging links).
    pub query: Vec<(String, String)>,
    /// Query and body parameters (query wins).
    pub params: BTreeMap<String, String>,
    /// A JSON body, if one was sent.
    pub json: Option<Value>,
    /// `Authorization: Bearer|OAuth …` or `access_token`.
    pub token: Option<String>,
    /// `Host` header (for absolute paging links).
    pub host: Option<String>,
}

/// Whether `s` is `v<digits>.0`.
pub fn is_version(s: &str) -> bool {
    s.strip_prefix('v')
        .and_then(|r| r.strip_suffix(".0"))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

impl GraphRequest {
    /// Parse; a malformed JSON body is Graph's code 100.
    pub fn parse(method: Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Self, GraphError> {
        let path = uri.path().to_owned();
        // Ids may contain `/` (Instagram message ids are standard base64), sent as `%2F`.
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let version = match segments.first() {
            Some(first) if is_version(first) => Some(segments.remove(0)),
            _ => None,
        };
        let query: Vec<(String, String)> = uri.query().map(|q| url_pairs(q.as_bytes())).unwrap_or_default();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in &query {
            params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let trimmed = body.trim_ascii_start();
        let mut json = None;
        if content_type.starts_with("application/json")
            || (content_type.is_empty() && trimmed.starts_with(b"{"))
        {
            if !trimmed.is_empty() {
                let v: Value = serde_json::from_slice(body).map_err(|e| {
                    GraphError::invalid_param(format!("Invalid JSON in the request body: {e}"))
                })?;
                if let Value::Object(map) = &v {
                    for (k, val) in map {
                        let s = match val {
                            Value::String(s) => s.clone(),
                            Value::Array(items) if items.iter().all(Value::is_string) => items
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(","),
                            Value::Null => continue,
                            other => other.to_string(),
                        };
                        params.entry(k.clone()).or_insert(s);
                    }
                }
                json = Some(v);
            }
        } else if !body.is_empty() {
            for (k, v) in url_pairs(body) {
                params.entry(k).or_insert(v);
            }
        }
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let token = bearer.or_else(|| params.get("access_token").filter(|t| !t.is_empty()).cloned());
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            method,
            path,
            version,
            segments,
            query,
            params,
            json,
            token,
            host,
        })
    }

    /// A parameter, empty values counting as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter (code 100 when absent).
    pub fn require(&self, name: &str) -> Result<&str, GraphError> {
        self.param(name).ok_or_else(|| GraphError::missing_param(name))
    }

    /// The version to report.
    pub fn version_or_default(&self) -> &str {
        self.version.as_deref().unwrap_or(DEFAULT_VERSION)
    }

    /// The body as a JSON object: the JSON body itself, or the form/query parameters with
    /// JSON-looking values (`recipient={"id":"…"}`) decoded, as the Send API accepts both.
    pub fn body_object(&self) -> Value {
        if let Some(v @ Value::Object(_)) = &self.json {
            return v.clone();
        }
        let mut map = serde_json::Map::new();
        for (k, v) in &self.params {
            if k == "access_token" || k == "appsecret_proof" {
                continue;
            }
            let value = if v.starts_with('{') || v.starts_with('[') {
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()))
            } else {
                Value::String(v.clone())
            };
            map.insert(k.clone(), value);
        }
        Value::Object(map)
    }

    /// `scheme://host` for absolute links, as Meta builds `paging.next`.
    pub fn base_url(&self) -> String {
        match self.host.as_deref() {
            Some(h) if h.ends_with("facebook.com") => format!("https://{h}"),
            Some(h) => format!("http://{h}"),
            None => "https://graph.facebook.com".to_owned(),
        }
    }
}

/// `%XX` escapes of a path segment decoded (invalid escapes kept as they are).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    reqwest::Url::parse("http://x/")
        .map(|mut u| {
            u.set_query(Some(&String::from_utf8_lossy(bytes)));
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> GraphRequest {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        GraphRequest::parse(method, &uri.parse().unwrap(), &h, body.as_bytes()).unwrap()
    }

    #[test]
    fn version_is_split_and_token_comes_from_header_or_query() {
        let r = req(Method::GET, "/v26.0/me/accounts?access_token=q&limit=2", &[], "");
        assert_eq!(r.version.as_deref(), Some("v26.0"));
        assert_eq!(r.segments, ["me", "accounts"]);
        assert_eq!(r.token.as_deref(), Some("q"));
        let r = req(
            Method::GET,
            "/me?access_token=q",
            &[("authorization", "Bearer h")],
            "",
        );
        assert_eq!((r.version.as_deref(), r.token.as_deref()), (None, Some("h")));
        assert!(!is_version("v26") && !is_version("v.0") && is_version("v3.0"));
        let r = req(Method::GET, "/v26.0/aWdf%2Fx%2b1%zz", &[], "");
        assert_eq!(r.segments, ["aWdf/x+1%zz"]);
    }

    #[test]
    fn form_and_json_bodies_become_params() {
        let r = req(
            Method::POST,
            "/v25.0/1/messages",
            &[("content-type", "application/x-www-form-urlencoded")],
            "recipient=%7B%22id%22%3A%2242%22%7D&message=%7B%22text%22%3A%22hi%22%7D&to=5511",
        );
        let body = r.body_object();
        assert_eq!(body["recipient"]["id"], "42");
        assert_eq!(body["to"], "5511", "numbers stay strings");
        let r = req(
            Method::POST,
            "/v25.0/1/subscribed_apps",
            &[("content-type", "application/json")],
            r#"{"subscribed_fields":["messages","feed"]}"#,
        );
        assert_eq!(r.param("subscribed_fields"), Some("messages,feed"));
        let bad = GraphRequest::parse(
            Method::POST,
            &"/v25.0/x".parse().unwrap(),
            &HeaderMap::new(),
            b"{oops",
        );
        assert_eq!(bad.unwrap_err().code, 100);
    }
}
