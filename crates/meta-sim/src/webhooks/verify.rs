//! The GET handshake Meta performs when a callback URL is saved.

use http::StatusCode;

use super::sender::SendError;

/// The receiver's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// HTTP status.
    pub status: StatusCode,
    /// Response body.
    pub body: String,
    /// `Content-Type` of the response, if any.
    pub content_type: Option<String>,
    /// What Meta checks: a 200 whose body is exactly the challenge.
    pub challenge_echoed: bool,
}

/// `GET url?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...` with `client`, keeping
/// any query the URL already has.
pub async fn verify_with(
    client: &reqwest::Client,
    url: &str,
    verify_token: &str,
    challenge: &str,
) -> Result<VerifyOutcome, SendError> {
    let mut url = reqwest::Url::parse(url).map_err(|_| SendError::InvalidUrl { url: url.to_owned() })?;
    url.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", challenge)
        .append_pair("hub.verify_token", verify_token);
    let resp = client.get(url).send().await.map_err(SendError::Request)?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.map_err(SendError::Request)?;
    let challenge_echoed = status == StatusCode::OK && body == challenge;
    Ok(VerifyOutcome {
        status,
        body,
        content_type,
        challenge_echoed,
    })
}

/// As [`verify_with`] with a fresh client (Meta's user agent, 5 s timeout).
pub async fn verify_subscription(
    url: &str,
    verify_token: &str,
    challenge: &str,
) -> Result<VerifyOutcome, SendError> {
    let client = crate::http_client::build(super::sender::DEFAULT_TIMEOUT).map_err(SendError::Client)?;
    verify_with(&client, url, verify_token, challenge).await
}

/// A challenge like Meta's: a random decimal number.
pub fn new_challenge() -> String {
    format!("{}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000)
}
