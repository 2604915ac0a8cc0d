use std::time::Duration;

/// Why no suggestion came back. Callers branch on the variant, never on the message; no message
/// ever contains the API key or the provider URL.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AiError {
    /// No provider is configured for this deployment.
    #[error("AI suggestions are disabled: no provider is configured")]
    Disabled,
    /// The settings are unusable (bad URL, missing model, out-of-range value).
    #[error("invalid AI provider settings: {0}")]
    Config(String),
    /// Network failure, timeout or a 5xx: worth retrying later.
    #[error("AI provider unavailable: {0}")]
    Unavailable(String),
    /// HTTP 429. `retry_after` comes from `Retry-After` / `retry-after-ms` when the provider sent one.
    #[error("AI provider rate limit reached")]
    RateLimited { retry_after: Option<Duration> },
    /// Any other 4xx or an unexpected redirect: bad key, unknown model, unsupported parameter.
    /// Retrying will not help until the settings change.
    #[error("AI provider rejected the request: {0}")]
    Rejected(String),
    /// The provider answered, but not with something we can turn into a suggestion.
    #[error("AI provider answer could not be used: {0}")]
    Malformed(String),
}

impl AiError {
    /// Whether the same request may succeed later without a settings change.
    pub fn is_retryable(&self) -> bool {
        match self {
            AiError::Unavailable(_) | AiError::RateLimited { .. } => true,
            AiError::Disabled | AiError::Config(_) | AiError::Rejected(_) | AiError::Malformed(_) => false,
        }
    }
}
