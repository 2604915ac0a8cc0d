//! Client configuration: where Graph lives, which version, which app.

use std::time::Duration;

use url::Url;

use crate::error::GraphError;
use crate::secret::AppSecret;

/// Graph API version used when the operator does not pin one.
pub const DEFAULT_VERSION: &str = "v25.0";
/// Usage percentage above which calls are slowed down.
pub const DEFAULT_THROTTLE_THRESHOLD_PCT: u32 = 80;
/// Per-request timeout (connect + response) used by [`GraphConfig::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// API host, e.g. `https://graph.facebook.com` (or the simulator). A path prefix is allowed.
    pub graph_url: Url,
    /// Login dialog host, e.g. `https://www.facebook.com`.
    pub dialog_url: Url,
    /// Pinned Graph version such as `v25.0` (must match `v\d+\.0`).
    pub version: String,
    pub app_id: String,
    pub app_secret: AppSecret,
    pub timeout: Duration,
    /// Slow calls down once app or business-use-case usage reaches this percentage.
    pub throttle_threshold_pct: u32,
}

impl GraphConfig {
    /// A configuration with the default version, timeout and throttle threshold.
    pub fn new(graph_url: Url, dialog_url: Url, app_id: String, app_secret: AppSecret) -> Self {
        Self {
            graph_url,
            dialog_url,
            version: DEFAULT_VERSION.to_owned(),
            app_id,
            app_secret,
            timeout: DEFAULT_TIMEOUT,
            throttle_threshold_pct: DEFAULT_THROTTLE_THRESHOLD_PCT,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), GraphError> {
        validate_base_url("graph_url", &self.graph_url)?;
        validate_base_url("dialog_url", &self.dialog_url)?;
        if !is_valid_version(&self.version) {
            return Err(GraphError::Config(format!(
                "version {:?} is not of the form v<N>.0",
                self.version
            )));
        }
        // The app id ends up in the app token `{app_id}|{secret}` and in URLs.
        if self.app_id.is_empty() || !self.app_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(GraphError::Config(
                "app_id must be non-empty and alphanumeric".into(),
            ));
        }
        if self.app_secret.expose().is_empty() {
            return Err(GraphError::Config("app_secret is empty".into()));
        }
        if self.timeout.is_zero() {
            return Err(GraphError::Config("timeout must be positive".into()));
        }
        if !(1..=100).contains(&self.throttle_threshold_pct) {
            return Err(GraphError::Config(
                "throttle_threshold_pct must be within 1..=100".into(),
            ));
        }
        Ok(())
    }
}

/// `v\d+\.0`, as Meta names its versions.
pub(crate) fn is_valid_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.strip_suffix(".0"))
        .is_some_and(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
}

fn validate_base_url(name: &str, url: &Url) -> Result<(), GraphError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(GraphError::Config(format!("{name} must be http(s)")));
    }
    if url.host_str().is_none() || url.cannot_be_a_base() {
        return Err(GraphError::Config(format!("{name} must have a host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(GraphError::Config(format!(
            "{name} must not have a query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GraphError::Config(format!("{name} must not carry credentials")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GraphConfig {
        GraphConfig::new(
            Url::parse("https://graph.facebook.com").unwrap(),
            Url::parse("https://www.facebook.com").unwrap(),
            "123456".into(),
            AppSecret::new("app-secret".into()),
        )
    }

    #[test]
    fn versions_must_be_v_major_dot_zero() {
        for ok in ["v25.0", "v1.0", "v100.0"] {
            assert!(is_valid_version(ok), "{ok}");
        }
        for bad in ["25.0", "v25", "v25.1", "v.0", "vx.0", "v25.0/", "V25.0", ""] {
            assert!(!is_valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn default_config_is_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let mut c = config();
        c.version = "v25".into();
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.graph_url = Url::parse("ftp://graph.facebook.com").unwrap();
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.graph_url = Url::parse("https://graph.facebook.com/?x=1").unwrap();
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.app_id = "12|34".into();
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.app_secret = AppSecret::new(String::new());
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.throttle_threshold_pct = 0;
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));

        let mut c = config();
        c.timeout = Duration::ZERO;
        assert!(matches!(c.validate(), Err(GraphError::Config(_))));
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let printed = format!("{:?}", config());
        assert!(!printed.contains("app-secret"), "{printed}");
        assert!(printed.contains("***"));
    }
}
