//! The gateway's settings (see the crate docs for the variables).

use std::time::Duration;

use scifer_plumbing::config::Common;
use secrecy::{ExposeSecret, SecretString};
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
    /// How long SendMessage and RetryMessage may take at inbox: it answers once Meta has, through
    /// token-vault (up to about 15 s). Longer than reads, so a slow Meta is not cut off mid-send.
    #[serde(default = "default_inbox_send_timeout_ms")]
    pub inbox_send_timeout_ms: u64,
    /// The gateway's own store (accounts, sessions, workspaces, members, login failures).
    /// A secret: PostgreSQL URLs carry a password.
    #[serde(default = "default_database_url")]
    pub database_url: SecretString,
    /// How long a session lasts after login, whatever its use.
    #[serde(default = "default_session_ttl_hours")]
    pub session_ttl_hours: u64,
    /// Failed logins per account within [`LOGIN_WINDOW`] before further attempts are refused.
    #[serde(default = "default_login_max_failures_per_account")]
    pub login_max_failures_per_account: u32,
    /// Failed logins per client address within [`LOGIN_WINDOW`] before further attempts are refused.
    #[serde(default = "default_login_max_failures_per_address")]
    pub login_max_failures_per_address: u32,
    /// Take the client address from the first hop of `x-forwarded-for`. Only behind a proxy that
    /// sets the header: otherwise any caller picks its own address and escapes the login limit.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// The SMTP relay invitation emails go through, e.g. `smtp://relay:25`,
    /// `smtp://user:pass@relay:587?tls=required` (STARTTLS) or `smtps://relay:465`. Unset: emails
    /// are only logged (development), without their tokens. A secret: it may carry a password.
    #[serde(default)]
    pub smtp_url: Option<SecretString>,
    /// The sender of the gateway's emails.
    #[serde(default = "default_mail_from")]
    pub mail_from: String,
    /// How long an invitation token stays valid.
    #[serde(default = "default_invitation_ttl_hours")]
    pub invitation_ttl_hours: u64,
    /// How often an open WatchInbox stream re-checks its caller's session and membership; a
    /// logout, an expiry or a removal ends the stream at the next check. At least 1.
    #[serde(default = "default_watch_recheck_secs")]
    pub watch_recheck_secs: u64,
    /// token-vault's gRPC endpoint (ChannelApi forwards there).
    #[serde(default = "default_token_vault_url")]
    pub token_vault_url: String,
    /// The gateway's service credential for token-vault (the vault holds its SHA-256 in
    /// `SERVICE_CREDENTIALS`). Unset or empty: ChannelApi answers FAILED_PRECONDITION, so a
    /// deployment without channels still starts; there is no default credential.
    #[serde(default)]
    pub token_vault_credential: Option<SecretString>,
    /// How long one call to token-vault may take, connecting included. Longer than inbox's: the
    /// connect calls wait for Meta.
    #[serde(default = "default_token_vault_timeout_ms")]
    pub token_vault_timeout_ms: u64,
    /// Where Meta sends the browser back after Facebook Login: the frontend page that passes
    /// `code` and `state` to CompleteConnect. Must be one of the vault's allowed redirect URIs.
    #[serde(default = "default_meta_oauth_redirect_uri")]
    pub meta_oauth_redirect_uri: String,
    /// The frontend's base URL, for links in the gateway's emails (e.g. reconnecting a channel).
    #[serde(default = "default_public_app_url")]
    pub public_app_url: String,
}

/// The window in which failed logins are counted.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

impl Config {
    pub fn inbox_timeout(&self) -> Duration {
        Duration::from_millis(self.inbox_timeout_ms)
    }

    pub fn inbox_send_timeout(&self) -> Duration {
        Duration::from_millis(self.inbox_send_timeout_ms)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_hours.saturating_mul(3600))
    }

    pub fn invitation_ttl(&self) -> Duration {
        Duration::from_secs(self.invitation_ttl_hours.saturating_mul(3600))
    }

    pub fn watch_recheck(&self) -> Duration {
        Duration::from_secs(self.watch_recheck_secs.max(1))
    }

    pub fn token_vault_timeout(&self) -> Duration {
        Duration::from_millis(self.token_vault_timeout_ms)
    }

    /// The vault credential, None when unset or empty.
    pub fn token_vault_credential(&self) -> Option<&SecretString> {
        self.token_vault_credential
            .as_ref()
            .filter(|secret| !secret.expose_secret().is_empty())
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
fn default_inbox_send_timeout_ms() -> u64 {
    20_000
}
fn default_database_url() -> SecretString {
    SecretString::from("sqlite://gateway.sqlite")
}
fn default_session_ttl_hours() -> u64 {
    24 * 14
}
fn default_mail_from() -> String {
    "Scifer <no-reply@scifer.localhost>".into()
}
fn default_invitation_ttl_hours() -> u64 {
    24 * 7
}
fn default_watch_recheck_secs() -> u64 {
    5
}
fn default_token_vault_url() -> String {
    "http://127.0.0.1:9084".into()
}
fn default_token_vault_timeout_ms() -> u64 {
    20_000
}
fn default_meta_oauth_redirect_uri() -> String {
    "http://localhost:5173/channels/callback".into()
}
fn default_public_app_url() -> String {
    "http://localhost:5173".into()
}
fn default_login_max_failures_per_account() -> u32 {
    5
}
fn default_login_max_failures_per_address() -> u32 {
    20
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
        assert_eq!(config.inbox_send_timeout(), Duration::from_secs(20));
        assert_eq!(config.common.bus_prefix, "scifer");
        assert_eq!(config.database_url.expose_secret(), "sqlite://gateway.sqlite");
        assert_eq!(config.session_ttl(), Duration::from_secs(14 * 24 * 3600));
        assert_eq!(config.login_max_failures_per_account, 5);
        assert_eq!(config.login_max_failures_per_address, 20);
        assert!(!config.trust_forwarded_for);
        assert!(config.smtp_url.is_none());
        assert_eq!(config.invitation_ttl(), Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.watch_recheck(), Duration::from_secs(5));
        assert_eq!(config.token_vault_url, "http://127.0.0.1:9084");
        assert!(config.token_vault_credential().is_none());
        assert_eq!(config.token_vault_timeout(), Duration::from_secs(20));
        assert_eq!(
            config.meta_oauth_redirect_uri,
            "http://localhost:5173/channels/callback"
        );
        assert_eq!(config.public_app_url, "http://localhost:5173");
    }

    #[test]
    fn variables_override_defaults() {
        let config = load(&[
            ("LISTEN_ADDR", "0.0.0.0:9000"),
            ("INBOX_URL", "http://inbox:9082"),
            ("CORS_ALLOWED_ORIGINS", "https://a.test,http://localhost:5173"),
            ("INBOX_TIMEOUT_MS", "750"),
            ("INBOX_SEND_TIMEOUT_MS", "12000"),
            ("BUS_PREFIX", "p1"),
            ("DATABASE_URL", "postgres://u:p@db/gateway"),
            ("SESSION_TTL_HOURS", "2"),
            ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"),
            ("LOGIN_MAX_FAILURES_PER_ADDRESS", "9"),
            ("TRUST_FORWARDED_FOR", "true"),
            ("SMTP_URL", "smtp://mailer:secret@relay:587?tls=required"),
            ("MAIL_FROM", "Acme <no-reply@acme.test>"),
            ("INVITATION_TTL_HOURS", "1"),
            ("WATCH_RECHECK_SECS", "0"),
            ("TOKEN_VAULT_URL", "http://token-vault:9084"),
            ("TOKEN_VAULT_CREDENTIAL", "vault-canary-credential"),
            ("TOKEN_VAULT_TIMEOUT_MS", "900"),
            (
                "META_OAUTH_REDIRECT_URI",
                "https://app.acme.test/channels/callback",
            ),
            ("PUBLIC_APP_URL", "https://app.acme.test"),
        ]);
        assert_eq!(config.listen_addr, "0.0.0.0:9000");
        assert_eq!(config.inbox_url, "http://inbox:9082");
        assert_eq!(
            config.cors_allowed_origins,
            vec!["https://a.test", "http://localhost:5173"]
        );
        assert_eq!(config.inbox_timeout(), Duration::from_millis(750));
        assert_eq!(config.inbox_send_timeout(), Duration::from_secs(12));
        assert_eq!(config.common.bus_prefix, "p1");
        assert_eq!(config.database_url.expose_secret(), "postgres://u:p@db/gateway");
        assert_eq!(config.session_ttl(), Duration::from_secs(7200));
        assert_eq!(config.login_max_failures_per_account, 3);
        assert_eq!(config.login_max_failures_per_address, 9);
        assert!(config.trust_forwarded_for);
        assert!(!format!("{config:?}").contains("u:p@"), "the URL is a secret");
        assert_eq!(
            config.smtp_url.as_ref().map(|u| u.expose_secret().to_string()),
            Some("smtp://mailer:secret@relay:587?tls=required".to_string())
        );
        assert!(
            !format!("{config:?}").contains("mailer:secret"),
            "the SMTP URL is a secret"
        );
        assert_eq!(config.mail_from, "Acme <no-reply@acme.test>");
        assert_eq!(config.invitation_ttl(), Duration::from_secs(3600));
        assert_eq!(
            config.watch_recheck(),
            Duration::from_secs(1),
            "0 would re-check constantly"
        );
        assert_eq!(config.token_vault_url, "http://token-vault:9084");
        assert_eq!(
            config
                .token_vault_credential()
                .map(|c| c.expose_secret().to_string()),
            Some("vault-canary-credential".to_string())
        );
        assert!(
            !format!("{config:?}").contains("vault-canary-credential"),
            "the vault credential is a secret"
        );
        assert_eq!(config.token_vault_timeout(), Duration::from_millis(900));
        assert_eq!(
            config.meta_oauth_redirect_uri,
            "https://app.acme.test/channels/callback"
        );
        assert_eq!(config.public_app_url, "https://app.acme.test");
    }

    #[test]
    fn an_empty_vault_credential_counts_as_unset() {
        let config = load(&[("TOKEN_VAULT_CREDENTIAL", "")]);
        assert!(config.token_vault_credential().is_none());
    }
}
