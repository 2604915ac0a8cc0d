//! The `CallWebhook` action: one signed POST of the event as JSON. http(s) only, no redirects (a
//! redirect could lead the call somewhere the rule's validation never saw), bounded by a timeout,
//! never retried: a failure is logged and recorded by the caller.

use std::time::Duration;

use super::domain;

/// The header carrying [`domain::signature`].
pub const SIGNATURE_HEADER: &str = "x-scifer-signature";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook URL is not http(s)")]
    Url,
    #[error("no webhook secret is set (rotate one in the automation settings)")]
    NoSecret,
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("the receiver could not be reached: {0}")]
    Unreachable(String),
}

#[derive(Clone)]
pub struct Webhooks {
    client: reqwest::Client,
}

impl Webhooks {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()?;
        Ok(Self { client })
    }

    /// POSTs `body`, signed with `secret`; Ok with the receiver's status when it was 2xx.
    pub async fn call(&self, url: &str, secret: &str, body: &serde_json::Value) -> Result<u16, WebhookError> {
        let parsed = url::Url::parse(url).map_err(|_| WebhookError::Url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WebhookError::Url);
        }
        if secret.is_empty() {
            return Err(WebhookError::NoSecret);
        }
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let signature = domain::signature(secret.as_bytes(), chrono::Utc::now().timestamp(), &bytes);
        let response = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await
            // Without the URL: it may carry a token of the receiver's.
            .map_err(|e| WebhookError::Unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err(WebhookError::Status(status))
        }
    }
}
