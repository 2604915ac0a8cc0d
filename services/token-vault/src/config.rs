//! Settings, from `scifer_plumbing::config::load` (env names are the field names upper-cased).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: scifer_plumbing::config::Common,
    /// Internal gRPC and health endpoint (`GRPC_ADDR`).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// `sqlite://path` or `postgres://...` (`DATABASE_URL`).
    #[serde(default = "default_database_url")]
    pub database_url: String,

    /// Key-encryption keys, `version:base64key` pairs separated by commas (`VAULT_KEKS`). Or
    /// `VAULT_KEKS_FILE`, a file with the same content (a mounted Kubernetes secret). Never stored
    /// in the database.
    #[serde(default)]
    pub vault_keks: Option<SecretString>,
    #[serde(default)]
    pub vault_keks_file: Option<String>,
    /// The KEK version that wraps new data keys (`VAULT_KEK_PRIMARY`); the highest when unset.
    #[serde(default)]
    pub vault_kek_primary: Option<u32>,

    /// Services allowed to call, `name:sha256hex(credential)` pairs (`SERVICE_CREDENTIALS`).
    #[serde(default)]
    pub service_credentials: String,

    /// Graph API base (`META_GRAPH_URL`): https://graph.facebook.com, or the simulator.
    #[serde(default = "default_graph_url")]
    pub meta_graph_url: String,
    /// Where the Facebook Login dialog lives (`META_DIALOG_URL`).
    #[serde(default = "default_dialog_url")]
    pub meta_dialog_url: String,
    /// Pinned Graph version (`META_GRAPH_VERSION`); Meta silently upgrades expired versions.
    #[serde(default = "default_graph_version")]
    pub meta_graph_version: String,
    /// `META_APP_ID`.
    pub meta_app_id: String,
    /// `META_APP_SECRET`: signs appsecret_proof and authenticates code exchanges.
    pub meta_app_secret: SecretString,
    /// Graph request timeout (`META_GRAPH_TIMEOUT_MS`).
    #[serde(default = "default_graph_timeout_ms")]
    pub meta_graph_timeout_ms: u64,
    /// Usage percentage above which calls are slowed (`META_THROTTLE_THRESHOLD_PCT`).
    #[serde(default = "default_throttle_threshold")]
    pub meta_throttle_threshold_pct: u32,

    /// Redirect URIs StartConnect accepts, comma-separated (`CONNECT_REDIRECT_URIS`). Meta also
    /// checks them against the app's settings; we check first so a forged request cannot send a
    /// code anywhere else.
    #[serde(default = "default_redirect_uris")]
    pub connect_redirect_uris: String,
    /// How long a connect `state` and its session live (`CONNECT_SESSION_TTL_SECS`).
    #[serde(default = "default_connect_ttl")]
    pub connect_session_ttl_secs: u64,

    /// Hosts media URLs from Graph may point at (`MEDIA_URL_HOSTS`, comma-separated): the token
    /// goes only there. Meta serves WhatsApp media from lookaside.fbsbx.com.
    #[serde(default = "default_media_hosts")]
    pub media_url_hosts: String,
    /// Largest media file fetched (`MEDIA_MAX_BYTES`; WhatsApp documents go up to 100 MB).
    #[serde(default = "default_media_max_bytes")]
    pub media_max_bytes: u64,
    /// Period of the connection health check (`HEALTH_CHECK_INTERVAL_SECS`); 0 disables it.
    #[serde(default = "default_health_interval")]
    pub health_check_interval_secs: u64,
    /// Period of the key rotation job (`ROTATION_INTERVAL_SECS`); 0 disables it.
    #[serde(default = "default_rotation_interval")]
    pub rotation_interval_secs: u64,
    /// Rows the rotation job re-wraps or re-seals per transaction (`ROTATION_BATCH`).
    #[serde(default = "default_rotation_batch")]
    pub rotation_batch: u64,
}

impl Config {
    pub fn connect_ttl(&self) -> Duration {
        Duration::from_secs(self.connect_session_ttl_secs.max(60))
    }

    pub fn redirect_uris(&self) -> Vec<String> {
        self.connect_redirect_uris
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn media_hosts(&self) -> Vec<String> {
        self.media_url_hosts
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }

    pub fn graph_timeout(&self) -> Duration {
        Duration::from_millis(self.meta_graph_timeout_ms.max(100))
    }
}

fn default_grpc_addr() -> String {
    "127.0.0.1:9084".into()
}
fn default_database_url() -> String {
    "sqlite://token-vault.sqlite".into()
}
fn default_graph_url() -> String {
    "https://graph.facebook.com".into()
}
fn default_dialog_url() -> String {
    "https://www.facebook.com".into()
}
fn default_graph_version() -> String {
    "v25.0".into()
}
fn default_graph_timeout_ms() -> u64 {
    10_000
}
fn default_throttle_threshold() -> u32 {
    80
}
fn default_redirect_uris() -> String {
    "http://localhost:5173/channels/callback".into()
}
fn default_connect_ttl() -> u64 {
    900
}
fn default_media_hosts() -> String {
    "lookaside.fbsbx.com".into()
}
fn default_media_max_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_health_interval() -> u64 {
    3600
}
fn default_rotation_interval() -> u64 {
    60
}
fn default_rotation_batch() -> u64 {
    200
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_and_required_settings() {
        let err = scifer_plumbing::config::load_from::<Config>(None, Vec::<(String, String)>::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("meta_app_id") || err.contains("meta_app_secret"),
            "{err}"
        );
        let c: Config = scifer_plumbing::config::load_from(
            None,
            [
                ("META_APP_ID".to_string(), "123".to_string()),
                ("META_APP_SECRET".to_string(), "s".to_string()),
                (
                    "CONNECT_REDIRECT_URIS".to_string(),
                    "https://a/cb, https://b/cb".to_string(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.grpc_addr, "127.0.0.1:9084");
        assert_eq!(c.meta_graph_version, "v25.0");
        assert_eq!(c.meta_app_secret.expose_secret(), "s");
        assert_eq!(c.redirect_uris(), vec!["https://a/cb", "https://b/cb"]);
    }
}
