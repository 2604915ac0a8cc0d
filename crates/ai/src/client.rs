use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::redacted_url;
use crate::prompt::{self, ChatMessage};
use crate::{AiConfig, AiError, Suggestion, SuggestionRequest, answer};

/// Something that drafts replies. Implemented by [`OpenAiCompatible`]; callers are generic over it
/// so tests can swap in a stub.
pub trait SuggestionProvider: Send + Sync {
    fn suggest(&self, req: &SuggestionRequest) -> impl Future<Output = Result<Suggestion, AiError>> + Send;

    /// A stable provider name for audit records and logs.
    fn name(&self) -> &str;
}

/// A successful body larger than this is not a chat completion we asked for.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Error bodies are only read for the provider's message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
const MAX_PROVIDER_MESSAGE_CHARS: usize = 300;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for any server that speaks OpenAI's `POST /chat/completions` (OpenAI, Azure OpenAI v1,
/// Ollama, vLLM, LiteLLM, …).
pub struct OpenAiCompatible {
    http: reqwest::Client,
    endpoint: Url,
    auth: Option<HeaderValue>,
    config: AiConfig,
}

impl OpenAiCompatible {
    pub fn new(config: AiConfig) -> Result<Self, AiError> {
        config.validate()?;
        let endpoint = chat_completions_url(&config.base_url)?;
        let auth = config.api_key.as_ref().map(bearer).transpose()?;
        // reqwest is built with `rustls-no-provider`: building a client panics unless a process
        // default provider exists. Err only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(CONNECT_TIMEOUT))
            // An API endpoint that redirects means a wrong base URL; following it would resend
            // the prompt (and, same-origin, the key) somewhere we did not configure.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scifer-ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                AiError::Config(format!(
                    "cannot build the HTTP client: {}",
                    chain(&e.without_url())
                ))
            })?;
        Ok(OpenAiCompatible {
            http,
            endpoint,
            auth,
            config,
        })
    }

    pub fn config(&self) -> &AiConfig {
        &self.config
    }

    async fn request(&self, req: &SuggestionRequest) -> Result<Suggestion, AiError> {
        let body = ChatRequest {
            model: &self.config.model,
            messages: prompt::chat_messages(req, self.config.max_context_messages),
            temperature: self.config.temperature,
            response_format: ResponseFormat { kind: "json_object" },
        };
        tracing::debug!(
            model = %self.config.model,
            channel = %req.channel,
            turns = body.messages.len() - 1,
            canned = req.canned.len(),
            "requesting a reply suggestion"
        );
        let mut call = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(auth) = &self.auth {
            call = call.header(AUTHORIZATION, auth.clone());
        }
        let mut response = call.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_error(response).await);
        }

        let bytes = read_capped(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| self.transport_error(e))?
            .ok_or_else(|| AiError::Malformed("the response body is larger than 1 MiB".into()))?;
        let completion: ChatResponse = serde_json::from_slice(&bytes)
            .map_err(|e| AiError::Malformed(format!("the response body is not a chat completion: {e}")))?;
        let Some(choice) = completion.choices.into_iter().next() else {
            return Err(AiError::Malformed("the completion has no choices".into()));
        };
        let Some(content) = choice.message.and_then(|m| m.content) else {
            return Err(AiError::Malformed("the completion has no message content".into()));
        };
        let parsed = answer::parse_content(&content)?;
        let (text, truncated) = answer::truncate_for_channel(&parsed.reply, req.channel);
        if truncated {
            tracing::info!(channel = %req.channel, "suggested reply was cut to the channel limit");
        }
        Ok(Suggestion {
            text,
            confidence: parsed.confidence,
            wants_human: parsed.wants_human,
            model: completion
                .model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| self.config.model.clone()),
            usage_tokens: completion
                .usage
                .and_then(|u| u.total_tokens)
                .and_then(|t| u32::try_from(t).ok()),
            truncated,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> AiError {
        if e.is_timeout() {
            return AiError::Unavailable(format!("no answer within {:?}", self.config.timeout));
        }
        AiError::Unavailable(chain(&e.without_url()))
    }

    async fn status_error(&self, mut response: reqwest::Response) -> AiError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let detail = match read_capped(&mut response, MAX_ERROR_BODY_BYTES).await {
            Ok(Some(body)) => ProviderError::from_body(&body),
            Ok(None) | Err(_) => ProviderError::default(),
        };
        match status {
            // OpenAI answers 429 both for "slow down" and for "out of credit"; only the first
            // goes away by waiting.
            429 if detail.code.as_deref() == Some("insufficient_quota") => {
                AiError::Rejected("the provider account has no quota left (HTTP 429)".into())
            }
            429 => AiError::RateLimited { retry_after },
            // Auth errors are reported without the provider's text: OpenAI's echoes part of the key.
            401 | 403 => AiError::Rejected(format!("the provider refused the API key (HTTP {status})")),
            408 => AiError::Unavailable("the provider timed out the request (HTTP 408)".into()),
            400..=499 => AiError::Rejected(match detail.message {
                Some(m) => format!("HTTP {status}: {}", self.scrub(&m)),
                None => format!("HTTP {status}"),
            }),
            500..=599 => AiError::Unavailable(format!("HTTP {status}")),
            300..=399 => {
                AiError::Rejected(format!("unexpected redirect (HTTP {status}); check the base URL"))
            }
            _ => AiError::Unavailable(format!("unexpected HTTP {status}")),
        }
    }

    /// Provider messages are passed on for 4xx (they name the bad model or parameter), minus any
    /// copy of our key, clipped.
    fn scrub(&self, message: &str) -> String {
        let mut m = message.trim().to_owned();
        if let Some(key) = &self.config.api_key {
            let key = key.expose_secret();
            if !key.is_empty() {
                m = m.replace(key, "***");
            }
        }
        match m.char_indices().nth(MAX_PROVIDER_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &m[..cut]),
            None => m,
        }
    }
}

impl SuggestionProvider for OpenAiCompatible {
    fn suggest(&self, req: &SuggestionRequest) -> impl Future<Output = Result<Suggestion, AiError>> + Send {
        self.request(req)
    }

    fn name(&self) -> &str {
        "openai-compatible"
    }
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("endpoint", &redacted_url(&self.endpoint))
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `{base}/chat/completions`, keeping the base path (`/v1`) whether or not it ends in a slash.
fn chat_completions_url(base: &Url) -> Result<Url, AiError> {
    let mut url = base.clone();
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| AiError::Config("the base URL cannot take a path".into()))?
        .pop_if_empty()
        .extend(["chat", "completions"]);
    Ok(url)
}

fn bearer(key: &SecretString) -> Result<HeaderValue, AiError> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose_secret().trim()))
        .map_err(|_| AiError::Config("the API key has characters that cannot go in an HTTP header".into()))?;
    // Keeps it out of reqwest's and hyper's debug output.
    value.set_sensitive(true);
    Ok(value)
}

/// The body, or `None` when it exceeds `cap`.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `retry-after-ms` (OpenAI, Azure) wins over `Retry-After`, which may be seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |s: &str| {
        s.parse::<f64>()
            .ok()
            .and_then(|n| Duration::try_from_secs_f64(n).ok())
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && let Ok(d) = Duration::try_from_secs_f64(ms / 1000.0)
    {
        return Some(d);
    }
    let value = header("retry-after")?;
    seconds(value).or_else(|| {
        let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
        Some(wait.to_std().unwrap_or(Duration::ZERO))
    })
}

/// The error chain of a URL-free reqwest error: "error sending request: client error (Connect): …".
fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    temperature: f32,
    response_format: ResponseFormat,
}

#[derive(Serialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    total_tokens: Option<u64>,
}

/// What an OpenAI-style error body says: `{"error": {"message", "code"}}`, `{"error": "…"}` or
/// `{"message": "…"}`.
#[derive(Debug, Default, PartialEq)]
struct ProviderError {
    message: Option<String>,
    code: Option<String>,
}

impl ProviderError {
    fn from_body(body: &[u8]) -> Self {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return ProviderError::default();
        };
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        match v.get("error") {
            Some(serde_json::Value::String(s)) => ProviderError {
                message: Some(s.clone()),
                code: None,
            },
            Some(e) => ProviderError {
                message: text(e.get("message")),
                code: text(e.get("code")),
            },
            None => ProviderError {
                message: text(v.get("message")),
                code: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn endpoint_keeps_the_base_path() {
        for (base, want) in [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:11434",
                "http://localhost:11434/chat/completions",
            ),
            (
                "https://r.example.com/openai/v1?api-version=x#f",
                "https://r.example.com/openai/v1/chat/completions?api-version=x",
            ),
        ] {
            assert_eq!(chat_completions_url(&url(base)).expect("joins").as_str(), want);
        }
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));

        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a past date means now");
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        h.insert("retry-after", HeaderValue::try_from(future).expect("header"));
        let wait = retry_after(&h).expect("parsed");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );

        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn provider_error_shapes() {
        let openai = br#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#;
        assert_eq!(
            ProviderError::from_body(openai),
            ProviderError {
                message: Some("The model `x` does not exist".into()),
                code: Some("model_not_found".into())
            }
        );
        assert_eq!(
            ProviderError::from_body(br#"{"error":"bad"}"#).message.as_deref(),
            Some("bad")
        );
        assert_eq!(
            ProviderError::from_body(br#"{"message":"nope"}"#)
                .message
                .as_deref(),
            Some("nope")
        );
        assert_eq!(ProviderError::from_body(b"<html>"), ProviderError::default());
    }

    #[test]
    fn bad_key_characters_are_a_config_error_without_the_key() {
        let mut config = AiConfig::new(url("https://api.openai.com/v1"), "m", Some("sk-abc\ndef".into()));
        config.timeout = Duration::from_secs(1);
        let e = OpenAiCompatible::new(config).unwrap_err();
        assert!(matches!(e, AiError::Config(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("sk-abc"), "{e:?}");
    }

    #[test]
    fn debug_and_scrub_hide_the_key() {
        let config = AiConfig::new(
            url("https://api.openai.com/v1"),
            "gpt-4o-mini",
            Some("sk-live-123456".into()),
        );
        let client = OpenAiCompatible::new(config).expect("client");
        let shown = format!("{client:?}");
        assert!(!shown.contains("sk-live-123456"), "{shown}");
        assert!(
            shown.contains("https://api.openai.com/v1/chat/completions"),
            "{shown}"
        );
        assert_eq!(client.scrub("bad key sk-live-123456 given"), "bad key *** given");
        let long = "x".repeat(MAX_PROVIDER_MESSAGE_CHARS + 50);
        assert_eq!(
            client.scrub(&long).chars().count(),
            MAX_PROVIDER_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn request_body_serialises_temperature_as_written() {
        let body = ChatRequest {
            model: "m",
            messages: vec![],
            temperature: 0.2,
            response_format: ResponseFormat { kind: "json_object" },
        };
        let json = serde_json::to_string(&body).expect("serialises");
        assert_eq!(
            json,
            r#"{"model":"m","messages":[],"temperature":0.2,"response_format":{"type":"json_object"}}"#
        );
    }
}
