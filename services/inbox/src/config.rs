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
    /// How long JetStream waits for an ack before redelivering (`CONSUMER_ACK_WAIT_SECS`). Must
    /// exceed the time one batch takes, or batches get redelivered while still in flight.
    #[serde(default = "default_ack_wait_secs")]
    pub consumer_ack_wait_secs: u64,
    /// Events per fetch, and so per transaction (`CONSUMER_BATCH_SIZE`). The Meta consumer writes
    /// each batch set-based, so its cost is mostly per batch: 1000 drains a backlog about twice as
    /// fast as 256 (`cargo run --release -p inbox --example drain`).
    #[serde(default = "default_batch_size")]
    pub consumer_batch_size: usize,
    /// After a batch's first event, how long to wait for more (`CONSUMER_LINGER_MS`). 0 takes
    /// what is already buffered, which under a backlog is only ~100 events per batch; 10 ms lets
    /// batches fill (3x the drain rate) at the cost of 10 ms of latency for a lone event.
    #[serde(default = "default_linger_ms")]
    pub consumer_linger_ms: u64,
    /// Where token-vault is (`TOKEN_VAULT_URL`): every send goes through its Graph egress.
    #[serde(default = "default_token_vault_url")]
    pub token_vault_url: String,
    /// inbox's credential for token-vault (`TOKEN_VAULT_CREDENTIAL`). Unset: sending answers
    /// FAILED_PRECONDITION; reading the inbox works.
    #[serde(default)]
    pub token_vault_credential: Option<SecretString>,
    /// Bound on one send through the vault, Meta's answer included (`TOKEN_VAULT_TIMEOUT_MS`).
    #[serde(default = "default_token_vault_timeout_ms")]
    pub token_vault_timeout_ms: u64,
    /// Whether the Meta app has the Human Agent feature (App Review), per channel
    /// (`HUMAN_AGENT_MESSENGER`, `HUMAN_AGENT_INSTAGRAM`): human replies between 24 h and 7 days.
    #[serde(default = "default_true")]
    pub human_agent_messenger: bool,
    #[serde(default = "default_true")]
    pub human_agent_instagram: bool,
    /// How long an ad-referral (Click-to-Messenger / Direct) window lasts, in hours
    /// (`AD_REFERRAL_WINDOW_HOURS`; Meta says up to 7 days, UNCERTAIN).
    #[serde(default = "default_ad_window_hours")]
    pub ad_referral_window_hours: i64,
    /// How often snoozed conversations whose time has come are reopened (`SNOOZE_CHECK_MS`): a
    /// snooze ends at most this long after its time.
    #[serde(default = "default_snooze_check_ms")]
    pub snooze_check_ms: u64,
    /// AI-suggested replies: an OpenAI-compatible API root (`AI_BASE_URL`, e.g.
    /// `https://api.openai.com/v1`), its model (`AI_MODEL`) and key (`AI_API_KEY`, a secret;
    /// optional for local servers). Unset base URL: SuggestReply answers FAILED_PRECONDITION.
    #[serde(default)]
    pub ai_base_url: Option<String>,
    #[serde(default)]
    pub ai_model: Option<String>,
    #[serde(default)]
    pub ai_api_key: Option<SecretString>,
    /// Bound on one suggestion (`AI_TIMEOUT_MS`); under the gateway's `INBOX_SEND_TIMEOUT_MS`.
    #[serde(default = "default_ai_timeout_ms")]
    pub ai_timeout_ms: u64,
    /// Issue 5: how often every WABA's WhatsApp templates are re-read from Graph
    /// (`TEMPLATE_SYNC_INTERVAL_SECS`); 0 = only when a WhatsApp number connects (status webhooks
    /// keep the list current in between).
    #[serde(default = "default_template_sync_interval_secs")]
    pub template_sync_interval_secs: u64,
}

impl Config {
    pub fn send_policy(&self) -> scifer_send_gate::Policy {
        scifer_send_gate::Policy {
            human_agent_enabled_messenger: self.human_agent_messenger,
            human_agent_enabled_instagram: self.human_agent_instagram,
            ad_referral_window: chrono::Duration::hours(self.ad_referral_window_hours.max(0)),
            ..scifer_send_gate::Policy::default()
        }
    }

    pub fn token_vault_timeout(&self) -> Duration {
        Duration::from_millis(self.token_vault_timeout_ms.max(100))
    }

    /// The AI provider's settings; `Ok(None)` when none is configured.
    pub fn ai(&self) -> Result<Option<scifer_ai::AiConfig>, scifer_ai::AiError> {
        let config = scifer_ai::from_settings(
            self.ai_base_url.as_deref(),
            self.ai_model.as_deref(),
            self.ai_api_key.clone(),
        )?;
        Ok(config.map(|mut c| {
            c.timeout = Duration::from_millis(self.ai_timeout_ms.max(100));
            c
        }))
    }

    /// Issue 5: None when the periodic template sync is off.
    pub fn template_sync_interval(&self) -> Option<Duration> {
        (self.template_sync_interval_secs > 0).then(|| Duration::from_secs(self.template_sync_interval_secs))
    }

    pub fn snooze_check(&self) -> Duration {
        Duration::from_millis(self.snooze_check_ms.max(10))
    }

    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.consumer_ack_wait_secs.max(1))
    }

    pub fn batch_options(&self) -> scifer_events::BatchOptions {
        scifer_events::BatchOptions {
            max_messages: self.consumer_batch_size.max(1),
            linger: Duration::from_millis(self.consumer_linger_ms),
        }
    }
}

fn default_grpc_addr() -> String {
    "127.0.0.1:9082".into()
}
fn default_database_url() -> String {
    "sqlite://inbox.sqlite".into()
}
fn default_ack_wait_secs() -> u64 {
    30
}
fn default_batch_size() -> usize {
    1000
}
fn default_linger_ms() -> u64 {
    10
}
fn default_token_vault_url() -> String {
    "http://127.0.0.1:9084".into()
}
fn default_token_vault_timeout_ms() -> u64 {
    15_000
}
fn default_true() -> bool {
    true
}
fn default_ad_window_hours() -> i64 {
    24 * 7
}
fn default_snooze_check_ms() -> u64 {
    30_000
}
fn default_ai_timeout_ms() -> u64 {
    15_000
}
fn default_template_sync_interval_secs() -> u64 {
    6 * 3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: Config = scifer_plumbing::config::load_from(None, Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.grpc_addr, "127.0.0.1:9082");
        assert_eq!(c.database_url, "sqlite://inbox.sqlite");
        assert_eq!(c.batch_options().max_messages, 1000);
        assert_eq!(c.batch_options().linger, Duration::from_millis(10));
        let c: Config = scifer_plumbing::config::load_from(
            None,
            [
                ("CONSUMER_BATCH_SIZE".to_string(), "10".to_string()),
                ("CONSUMER_ACK_WAIT_SECS".to_string(), "2".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.batch_options().max_messages, 10);
        assert_eq!(c.ack_wait(), Duration::from_secs(2));
    }

    #[test]
    fn template_sync_is_periodic_unless_zero() {
        assert_eq!(
            with(&[]).template_sync_interval(),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(
            with(&[("TEMPLATE_SYNC_INTERVAL_SECS", "60")]).template_sync_interval(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            with(&[("TEMPLATE_SYNC_INTERVAL_SECS", "0")]).template_sync_interval(),
            None
        );
    }

    fn with(vars: &[(&str, &str)]) -> Config {
        scifer_plumbing::config::load_from(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .unwrap()
    }

    #[test]
    fn ai_is_off_unless_configured_and_its_key_is_never_printed() {
        assert!(with(&[]).ai().unwrap().is_none());
        let c = with(&[
            ("AI_BASE_URL", "https://llm.example.com/v1"),
            ("AI_MODEL", "gpt-4o-mini"),
            ("AI_API_KEY", "sk-very-secret"),
            ("AI_TIMEOUT_MS", "5000"),
        ]);
        let ai = c.ai().unwrap().unwrap();
        assert_eq!(ai.model, "gpt-4o-mini");
        assert_eq!(ai.timeout, Duration::from_secs(5));
        assert!(!format!("{c:?} {ai:?}").contains("sk-very-secret"));
        // A base URL without a model is a mistake, not "disabled".
        assert!(
            with(&[("AI_BASE_URL", "https://llm.example.com/v1")])
                .ai()
                .is_err()
        );
        assert!(
            with(&[("AI_BASE_URL", "ftp://x"), ("AI_MODEL", "m")])
                .ai()
                .is_err()
        );
    }
}
