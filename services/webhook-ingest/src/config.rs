//! Settings, from the environment (names are the field names upper-cased, e.g. `META_APP_SECRET`).

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Meta caps WhatsApp payloads at 3 MB; 3 MiB leaves a little room above that.
const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: scifer_plumbing::config::Common,
    /// Public HTTP: the webhook callback plus `/healthz` and `/readyz`.
    #[serde(default = "default_listen_addr")]
    pub listen_addr: String,
    /// Internal admin gRPC (`IngestAdmin`) plus health. Never expose it to the internet.
    #[serde(default = "default_admin_addr")]
    pub admin_addr: String,
    /// The Meta app's secret, the HMAC key of `X-Hub-Signature-256`. Required, no default.
    pub meta_app_secret: SecretString,
    /// The verify token typed into the App Dashboard for the GET handshake. Required; when empty
    /// every handshake is refused.
    pub meta_verify_token: SecretString,
    /// Largest webhook body accepted; larger ones get 413 without being read further.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long the hot path waits for the ingest log's acknowledgement before answering 503.
    /// Meta gives about 5 s in total, so this stays well below that.
    #[serde(default = "default_publish_timeout_ms")]
    pub publish_timeout_ms: u64,
    /// How long the INGEST stream keeps raw deliveries (and so how far back Replay reaches).
    #[serde(default = "default_ingest_retention_days")]
    pub ingest_retention_days: u64,
    /// Whether this process runs the splitter. Off lets the receiver and the splitter scale (or be
    /// restarted) separately; deliveries wait in the INGEST stream meanwhile.
    #[serde(default = "default_true")]
    pub splitter_enabled: bool,
}

impl Config {
    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    pub fn ingest_retention(&self) -> Duration {
        Duration::from_secs(self.ingest_retention_days.saturating_mul(24 * 3600))
    }
}

fn default_listen_addr() -> String {
    "127.0.0.1:8081".into()
}
fn default_admin_addr() -> String {
    "127.0.0.1:9081".into()
}
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_publish_timeout_ms() -> u64 {
    2_500
}
fn default_ingest_retention_days() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
