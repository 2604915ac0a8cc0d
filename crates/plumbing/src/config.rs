//! Layered configuration: serde defaults, then an optional TOML file named by `SCIFER_CONFIG_FILE`,
//! then environment variables. Variable names are the field names in upper case
//! (`nats_url` ← `NATS_URL`), so the names operators and Meta's docs use (`META_APP_SECRET`)
//! work as they are.

use serde::{Deserialize, de::DeserializeOwned};

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// Loads `T` from defaults, the optional config file and the process environment.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    let file = std::env::var("SCIFER_CONFIG_FILE").ok();
    load_from(file.as_deref(), std::env::vars())
}

/// As [`load`], with the environment given explicitly (tests build their own instead of mutating the
/// process's).
pub fn load_from<T: DeserializeOwned>(
    file: Option<&str>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(config::File::new(path, config::FileFormat::Toml).required(true));
    }
    let env: config::Map<String, String> = vars
        .into_iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    builder = builder.add_source(
        config::Environment::default()
            .source(Some(env))
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("cors_allowed_origins"),
    );
    builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError(e.to_string()))
}

/// Settings every service shares. Services embed it with `#[serde(flatten)]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// NATS server with JetStream.
    #[serde(default = "default_nats_url")]
    pub nats_url: String,
    /// Prefix of every subject and stream name, so several deployments (or tests) share a server.
    #[serde(default = "default_bus_prefix")]
    pub bus_prefix: String,
    /// How long in-flight work may take to finish after SIGTERM.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
}

impl Common {
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_bus_prefix() -> String {
    "scifer".into()
}
fn default_grace() -> u64 {
    20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Demo {
        #[serde(flatten)]
        common: Common,
        meta_app_secret: secrecy::SecretString,
        #[serde(default)]
        max_body_bytes: Option<usize>,
        #[serde(default)]
        cors_allowed_origins: Vec<String>,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_names_map_to_fields_and_defaults_fill_the_rest() {
        let demo: Demo = load_from(
            None,
            vars(&[
                ("META_APP_SECRET", "s3cret"),
                ("MAX_BODY_BYTES", "1024"),
                ("BUS_PREFIX", "t1"),
                ("CORS_ALLOWED_ORIGINS", "http://a.test,http://b.test"),
            ]),
        )
        .unwrap();
        assert_eq!(demo.common.bus_prefix, "t1");
        assert_eq!(demo.common.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(demo.max_body_bytes, Some(1024));
        assert_eq!(demo.cors_allowed_origins, vec!["http://a.test", "http://b.test"]);
        assert!(!format!("{demo:?}").contains("s3cret"), "secrets must not print");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&demo.meta_app_secret),
            "s3cret"
        );
    }

    #[test]
    fn a_missing_required_setting_names_the_setting() {
        let err = load_from::<Demo>(None, vars(&[])).unwrap_err();
        assert!(err.to_string().contains("meta_app_secret"), "{err}");
    }
}
