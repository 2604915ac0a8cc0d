//! The gateway's settings (see the crate docs for the variables).

use std::time::Duration;

use scifer_plumbing::config::Common;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    /// The one public port: gRPC, gRPC-web, health and reflection, `/healthz`, `/readyz`.
    /// Loopback by default because nothing authenticates callers yet.
    #[serde(default = "default_listen_addr")]
    pub listen_addr: String,
    /// The inbox service's gRPC endpoint.
    #[serde(default = "default_inbox_url")]
    pub inbox_url: String,
    /// Browser origins allowed to call cross-origin, e.g. `https://app.example.com`. Empty: none.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// How long one call to inbox may take, connecting included.
    #[serde(default = "default_inbox_timeout_ms")]
    pub inbox_timeout_ms: u64,
}

impl Config {
    pub fn inbox_timeout(&self) -> Duration {
        Duration::from_millis(self.inbox_timeout_ms)
    }
}

fn default_listen_addr() -> String {
    "127.0.0.1:8080".into()
}
fn default_inbox_url() -> String {
    "http://127.0.0.1:9082".into()
}
fn default_inbox_timeout_ms() -> u64 {
    5_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Config {
        scifer_plumbing::config::load_from(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .unwrap()
    }

    #[test]
    fn defaults_listen_on_loopback_and_allow_no_origin() {
        let config = load(&[]);
        assert_eq!(config.listen_addr, "127.0.0.1:8080");
        assert_eq!(config.inbox_url, "http://127.0.0.1:9082");
        assert!(config.cors_allowed_origins.is_empty());
        assert_eq!(config.inbox_timeout(), Duration::from_secs(5));
        assert_eq!(config.common.bus_prefix, "scifer");
    }

    #[test]
    fn variables_override_defaults() {
        let config = load(&[
            ("LISTEN_ADDR", "0.0.0.0:9000"),
            ("INBOX_URL", "http://inbox:9082"),
            ("CORS_ALLOWED_ORIGINS", "https://a.test,http://localhost:5173"),
            ("INBOX_TIMEOUT_MS", "750"),
            ("BUS_PREFIX", "p1"),
        ]);
        assert_eq!(config.listen_addr, "0.0.0.0:9000");
        assert_eq!(config.inbox_url, "http://inbox:9082");
        assert_eq!(
            config.cors_allowed_origins,
            vec!["https://a.test", "http://localhost:5173"]
        );
        assert_eq!(config.inbox_timeout(), Duration::from_millis(750));
        assert_eq!(config.common.bus_prefix, "p1");
    }
}
