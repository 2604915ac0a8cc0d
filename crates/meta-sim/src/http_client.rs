//! The outbound HTTP client, shared by the webhook sender and the handshake client.

use std::time::Duration;

/// Meta's crawler/webhook user agent, so receivers' logs look like production.
pub const META_USER_AGENT: &str = "facebookexternalua";

/// Build a reqwest client. reqwest is compiled with `rustls-no-provider`, and building a client
/// without a process-default provider panics, so install ring first; `Err` only means another
/// component already installed one, which is fine.
pub fn build(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(META_USER_AGENT)
        .build()
}
