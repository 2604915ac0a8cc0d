use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::AiError;

/// Suggestions are interactive: an agent is waiting for the draft.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_CONTEXT_MESSAGES: usize = 20;
/// Low: drafts should stick to the conversation and the canned responses.
pub const DEFAULT_TEMPERATURE: f32 = 0.2;

/// Where and how to ask for suggestions.
#[derive(Clone)]
pub struct AiConfig {
    /// The API root that `chat/completions` is appended to, e.g. `https://api.openai.com/v1`.
    pub base_url: Url,
    pub model: String,
    /// Sent as `Authorization: Bearer …`; `None` for local servers that need no key.
    pub api_key: Option<SecretString>,
    pub timeout: Duration,
    /// Only the newest this many messages of the conversation go into the prompt.
    pub max_context_messages: usize,
    pub temperature: f32,
}

impl AiConfig {
    /// A config with the default timeout, context size and temperature.
    pub fn new(base_url: Url, model: impl Into<String>, api_key: Option<SecretString>) -> Self {
        AiConfig {
            base_url,
            model: model.into(),
            api_key,
            timeout: DEFAULT_TIMEOUT,
            max_context_messages: DEFAULT_MAX_CONTEXT_MESSAGES,
            temperature: DEFAULT_TEMPERATURE,
        }
    }

    /// Checks what the fields' types cannot; [`crate::OpenAiCompatible::new`] calls it.
    pub fn validate(&self) -> Result<(), AiError> {
        check_base_url(&self.base_url)?;
        if self.model.trim().is_empty() {
            return Err(AiError::Config("the model name is empty".into()));
        }
        if self.timeout.is_zero() {
            return Err(AiError::Config("the timeout must be positive".into()));
        }
        if self.max_context_messages == 0 {
            return Err(AiError::Config("max_context_messages must be at least 1".into()));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(AiError::Config(format!(
                "temperature {} is outside 0.0..=2.0",
                self.temperature
            )));
        }
        Ok(())
    }
}

/// Builds the config from settings, where an empty or absent base URL means "disabled" (`Ok(None)`).
/// An empty API key counts as no key.
pub fn from_settings(
    base_url: Option<&str>,
    model: Option<&str>,
    api_key: Option<SecretString>,
) -> Result<Option<AiConfig>, AiError> {
    let Some(base_url) = base_url.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // url::ParseError's message never repeats the input, which may hold a secret.
    let base_url =
        Url::parse(base_url).map_err(|e| AiError::Config(format!("the base URL is not a valid URL: {e}")))?;
    let Some(model) = model.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(AiError::Config(
            "a model is required when a base URL is set".into(),
        ));
    };
    let api_key = api_key.filter(|k| !k.expose_secret().trim().is_empty());
    let config = AiConfig::new(base_url, model, api_key);
    config.validate()?;
    Ok(Some(config))
}

fn check_base_url(url: &Url) -> Result<(), AiError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AiError::Config(format!(
            "the base URL must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(AiError::Config("the base URL has no host".into()));
    }
    // Credentials belong in the API key, where they stay out of logs and errors.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AiError::Config(
            "the base URL must not carry credentials; set the API key instead".into(),
        ));
    }
    Ok(())
}

/// The URL without userinfo and with any query masked, for Debug and logs.
pub(crate) fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("***"));
    }
    shown.to_string()
}

impl fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiConfig")
            .field("base_url", &redacted_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("max_context_messages", &self.max_context_messages)
            .field("temperature", &self.temperature)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Option<SecretString> {
        Some(SecretString::from(s))
    }

    #[test]
    fn absent_or_blank_base_url_means_disabled() {
        assert!(matches!(
            from_settings(None, Some("gpt-4o-mini"), key("sk-1")),
            Ok(None)
        ));
        assert!(matches!(
            from_settings(Some(""), Some("gpt-4o-mini"), None),
            Ok(None)
        ));
        assert!(matches!(from_settings(Some("   "), None, None), Ok(None)));
    }

    #[test]
    fn full_settings_give_a_config_with_defaults() {
        let c = from_settings(
            Some(" https://api.openai.com/v1 "),
            Some("gpt-4o-mini"),
            key("sk-1"),
        )
        .expect("valid settings")
        .expect("enabled");
        assert_eq!(c.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(c.api_key.as_ref().map(|k| k.expose_secret()), Some("sk-1"));
        assert_eq!(c.max_context_messages, 20);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn empty_key_counts_as_no_key() {
        let c = from_settings(Some("http://localhost:11434/v1"), Some("llama3"), key("  "))
            .expect("valid")
            .expect("enabled");
        assert!(c.api_key.is_none());
    }

    #[test]
    fn base_url_without_model_is_a_config_error() {
        for model in [None, Some(""), Some("  ")] {
            let e = from_settings(Some("https://api.openai.com/v1"), model, None).unwrap_err();
            assert!(matches!(e, AiError::Config(_)), "{e:?}");
        }
    }

    #[test]
    fn unusable_base_urls_are_config_errors() {
        for url in [
            "not a url",
            "ftp://example.com/v1",
            "mailto:ai@example.com",
            "https://user:sk-secret@example.com/v1",
        ] {
            let e = from_settings(Some(url), Some("m"), None).unwrap_err();
            assert!(matches!(e, AiError::Config(_)), "{url}: {e:?}");
            assert!(!e.to_string().contains("sk-secret"), "{e}");
        }
    }

    #[test]
    fn validate_rejects_out_of_range_values() {
        let base = AiConfig::new(Url::parse("https://api.openai.com/v1").expect("url"), "m", None);
        assert!(base.validate().is_ok());
        let cases = [
            AiConfig {
                max_context_messages: 0,
                ..base.clone()
            },
            AiConfig {
                timeout: Duration::ZERO,
                ..base.clone()
            },
            AiConfig {
                temperature: 2.5,
                ..base.clone()
            },
            AiConfig {
                temperature: f32::NAN,
                ..base.clone()
            },
            AiConfig {
                model: " ".into(),
                ..base.clone()
            },
        ];
        for c in cases {
            assert!(matches!(c.validate(), Err(AiError::Config(_))), "{c:?}");
        }
    }

    #[test]
    fn debug_redacts_the_key_and_url_query() {
        let mut c = AiConfig::new(
            Url::parse("https://llm.example.com/v1?token=qs-secret").expect("url"),
            "m",
            key("sk-very-secret"),
        );
        c.temperature = 0.5;
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(!shown.contains("qs-secret"), "{shown}");
        assert!(shown.contains("llm.example.com"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
