//! The `CallWebhook` action: one signed POST of the event as JSON. http(s) only, no redirects (a
//! redirect could lead the call somewhere the rule's validation never saw), bounded by a timeout,
//! never retried: a failure is logged and recorded by the caller. Only public addresses are
//! called (see [`domain::is_public_address`]), checked on the addresses the name resolves to, so a
//! name that points inside the network is refused too; `AUTOMATION_WEBHOOK_ALLOW_PRIVATE` lifts
//! this for deployments whose receivers are internal (and for tests).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use super::domain;

/// Resolves names as the system does and keeps only public addresses; none left is an error, so
/// the connection is never made.
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| domain::is_public_address(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The header carrying [`domain::signature`].
pub const SIGNATURE_HEADER: &str = "x-scifer-signature";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook URL is not http(s)")]
    Url,
    #[error("the webhook URL names an internal address")]
    InternalAddress,
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
    allow_private: bool,
}

impl Webhooks {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicAddressesOnly));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// POSTs `body`, signed with `secret`; Ok with the receiver's status when it was 2xx.
    pub async fn call(&self, url: &str, secret: &str, body: &serde_json::Value) -> Result<u16, WebhookError> {
        let parsed = url::Url::parse(url).map_err(|_| WebhookError::Url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WebhookError::Url);
        }
        // An address literal never reaches the resolver: check it here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if !self.allow_private && literal.is_some_and(|ip| !domain::is_public_address(ip)) {
            return Err(WebhookError::InternalAddress);
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
            .map_err(|e| WebhookError::Unreachable(scifer_plumbing::error_chain(&e.without_url())))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err(WebhookError::Status(status))
        }
    }
}
