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
    // Automation and handoff (issue 5).
    /// This deployment's Meta app id (`META_APP_ID`): a handover event passing the thread to it
    /// puts automation back in charge; one naming any other app puts a human in charge. Unset:
    /// only a pass to the human inbox below is recognised.
    #[serde(default)]
    pub meta_app_id: Option<String>,
    /// Messenger/Instagram conversation routing (`THREAD_CONTROL_HUMAN_APP_ID`): the app a handoff
    /// passes the thread to (`pass_thread_control`), taken back on hand back
    /// (`take_thread_control`); Meta's Page Inbox is `263902037430900`. Unset: Scifer's own agents
    /// are the humans, so a handoff is recorded without any Graph call and our app keeps the
    /// thread. WhatsApp's routing is not settled (UNCERTAIN): handoffs there are always recorded
    /// only.
    #[serde(default)]
    pub thread_control_human_app_id: Option<String>,
    /// How often idle rules are checked (`AUTOMATION_IDLE_CHECK_MS`): an idle rule fires at most
    /// this long after its minutes.
    #[serde(default = "default_idle_check_ms")]
    pub automation_idle_check_ms: u64,
    /// Bound on one `CallWebhook` POST (`AUTOMATION_WEBHOOK_TIMEOUT_MS`); never retried.
    #[serde(default = "default_webhook_timeout_ms")]
    pub automation_webhook_timeout_ms: u64,
    /// Let rules' webhooks reach private, loopback and link-local addresses
    /// (`AUTOMATION_WEBHOOK_ALLOW_PRIVATE`). Off by default: whoever signs up administers a
    /// workspace and writes its rules, and must not reach into the deployment's network.
    #[serde(default)]
    pub automation_webhook_allow_private: bool,

    // --- History, gaps and media ---
    /// Bounds of the backfill that runs once after a Messenger or Instagram channel connects
    /// (WhatsApp has no Conversations API): the newest `BACKFILL_MAX_CONVERSATIONS`
    /// conversations, and of each the newest `BACKFILL_MAX_MESSAGES_PER_CONVERSATION` messages
    /// (Graph's first page of the conversation's messages, so at most 100). Instagram shows
    /// only the 20 most recent messages of a conversation, whatever is asked. The same bounds hold
    /// for each reconciliation.
    #[serde(default = "default_backfill_max_conversations")]
    pub backfill_max_conversations: u32,
    #[serde(default = "default_backfill_max_messages")]
    pub backfill_max_messages_per_conversation: u32,
    /// How often connected Messenger and Instagram channels are compared with Meta's recent
    /// conversations to fill what no webhook delivered (`RECONCILE_INTERVAL_SECS`; 0 = off).
    #[serde(default = "default_reconcile_interval_secs")]
    pub reconcile_interval_secs: u64,
    /// How far back a reconciliation looks (`RECONCILE_LOOKBACK_HOURS`): conversations updated
    /// and messages sent in that time.
    #[serde(default = "default_reconcile_lookback_hours")]
    pub reconcile_lookback_hours: u64,
    /// Messages the business sent younger than this are left to their webhook echo or send
    /// result (`RECONCILE_SETTLE_SECS`): one read back first would be stored as a foreign
    /// echo before inbox's own send learns its mid.
    #[serde(default = "default_reconcile_settle_secs")]
    pub reconcile_settle_secs: u64,
    /// How often the history worker looks for due runs (`HISTORY_POLL_MS`).
    #[serde(default = "default_history_poll_ms")]
    pub history_poll_ms: u64,
    /// Where attachment copies are kept (`MEDIA_STORE`): `local` (a directory, `MEDIA_DIR`) or
    /// `s3` (S3-compatible object storage: `MEDIA_S3_BUCKET`, optional `MEDIA_S3_ENDPOINT` for
    /// MinIO and the like, `MEDIA_S3_REGION`; credentials from the standard `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` environment, never from this file).
    #[serde(default = "default_media_store")]
    pub media_store: String,
    #[serde(default = "default_media_dir")]
    pub media_dir: String,
    #[serde(default)]
    pub media_s3_bucket: Option<String>,
    #[serde(default)]
    pub media_s3_endpoint: Option<String>,
    #[serde(default)]
    pub media_s3_region: Option<String>,
    /// Largest attachment copied (`MEDIA_MAX_BYTES`); larger ones end FAILED ("too_large").
    #[serde(default = "default_media_max_bytes")]
    pub media_max_bytes: u64,
    /// Bound on one download (`MEDIA_FETCH_TIMEOUT_MS`).
    #[serde(default = "default_media_fetch_timeout_ms")]
    pub media_fetch_timeout_ms: u64,
    /// Hosts attachment URLs may be fetched from, comma-separated (`MEDIA_URL_HOSTS`); a name
    /// starting with a dot also allows its subdomains. Redirects outside the list are refused.
    #[serde(default = "default_media_url_hosts")]
    pub media_url_hosts: String,
    /// How often the media worker looks for due downloads (`MEDIA_POLL_MS`).
    #[serde(default = "default_media_poll_ms")]
    pub media_poll_ms: u64,
    /// Tries per attachment before it is FAILED (`MEDIA_MAX_ATTEMPTS`); the wait doubles from
    /// `MEDIA_RETRY_BASE_MS` between tries.
    #[serde(default = "default_media_max_attempts")]
    pub media_max_attempts: u32,
    #[serde(default = "default_media_retry_base_ms")]
    pub media_retry_base_ms: u64,
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

    // Automation and handoff (issue 5).
    pub fn idle_check(&self) -> Duration {
        Duration::from_millis(self.automation_idle_check_ms.max(10))
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.automation_webhook_timeout_ms.clamp(100, 60_000))
    }

    pub fn routing(&self) -> crate::automation::Routing {
        let set = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        crate::automation::Routing {
            our_app_id: set(&self.meta_app_id),
            human_app_id: set(&self.thread_control_human_app_id),
        }
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
// Automation and handoff (issue 5).
fn default_idle_check_ms() -> u64 {
    60_000
}
fn default_webhook_timeout_ms() -> u64 {
    5_000
}
fn default_backfill_max_conversations() -> u32 {
    50
}
fn default_backfill_max_messages() -> u32 {
    25
}
fn default_reconcile_interval_secs() -> u64 {
    900
}
fn default_reconcile_lookback_hours() -> u64 {
    24
}
fn default_reconcile_settle_secs() -> u64 {
    120
}
fn default_history_poll_ms() -> u64 {
    5_000
}
fn default_media_store() -> String {
    "local".into()
}
fn default_media_dir() -> String {
    "inbox-media".into()
}
fn default_media_max_bytes() -> u64 {
    // WhatsApp's largest (documents) is 100 MB.
    100 * 1024 * 1024
}
fn default_media_fetch_timeout_ms() -> u64 {
    60_000
}
fn default_media_url_hosts() -> String {
    // Meta's CDNs for Messenger and Instagram attachments (meta-platform.md, media).
    ".fbcdn.net,.fbsbx.com,.cdninstagram.com".into()
}
fn default_media_poll_ms() -> u64 {
    2_000
}
fn default_media_max_attempts() -> u32 {
    5
}
fn default_media_retry_base_ms() -> u64 {
    5_000
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
