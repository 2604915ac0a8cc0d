//! The local stack's own secrets: token-vault's key-encryption key and one credential per service
//! that may call token-vault. Generated on the first start and kept in `.data/` (mode 0600), so
//! the tokens the vault sealed into its SQLite file stay openable after a restart; `make
//! clean-data` removes them with the data they protect.

use std::{
    collections::BTreeMap,
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// The services that get a token-vault credential: the vault's callers (see its
/// `domain/caller.rs`), plus `operator` for hand-run key rotation.
pub const VAULT_CALLERS: &[&str] = &["gateway", "inbox", "publisher", "deletion", "operator"];

pub const FILE_NAME: &str = "devstack-secrets.json";

#[derive(Serialize, Deserialize, Default)]
pub struct DevSecrets {
    /// `VAULT_KEKS`: `1:<base64 of 32 random bytes>`.
    vault_keks: String,
    /// Service name → its credential (what it sends as the bearer).
    service_credentials: BTreeMap<String, String>,
}

// Hand-written so a stray `{:?}` prints which services have a credential, never the values.
impl std::fmt::Debug for DevSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSecrets")
            .field("vault_keks", &"***")
            .field("services", &self.service_credentials.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid ({source}); fix or delete it (`make clean-data` resets everything)")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("no randomness available from the operating system")]
    Random,
}

impl DevSecrets {
    /// Loads `dir/devstack-secrets.json`, generating what is missing (everything on the first run)
    /// and writing the file back only then.
    pub fn load_or_create(dir: &Path) -> Result<(Self, PathBuf), SecretsError> {
        let path = dir.join(FILE_NAME);
        let io = |source| SecretsError::Io {
            path: path.clone(),
            source,
        };
        let mut secrets = match fs::read(&path) {
            Ok(bytes) => {
                // Older files or a hand edit may have left it readable by others.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
                serde_json::from_slice(&bytes).map_err(|source| SecretsError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(e) => return Err(io(e)),
        };
        let mut changed = false;
        if secrets.vault_keks.is_empty() {
            let kek = random_bytes()?;
            secrets.vault_keks = format!("1:{}", base64::engine::general_purpose::STANDARD.encode(kek));
            changed = true;
        }
        for service in VAULT_CALLERS {
            if !secrets.service_credentials.contains_key(*service) {
                let credential = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes()?);
                secrets
                    .service_credentials
                    .insert((*service).to_string(), credential);
                changed = true;
            }
        }
        if changed {
            write_private(&path, &secrets).map_err(io)?;
        }
        Ok((secrets, path))
    }

    pub fn vault_keks(&self) -> &str {
        &self.vault_keks
    }

    pub fn credential(&self, service: &str) -> String {
        self.service_credentials.get(service).cloned().unwrap_or_default()
    }

    /// token-vault's `SERVICE_CREDENTIALS`: each caller with the SHA-256 of its credential.
    pub fn vault_service_credentials(&self) -> String {
        self.service_credentials
            .iter()
            .map(|(name, credential)| {
                format!(
                    "{name}:{}",
                    scifer_plumbing::service_identity::fingerprint(credential)
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn random_bytes() -> Result<[u8; 32], SecretsError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecretsError::Random)?;
    Ok(bytes)
}

/// Writes next to `path` with mode 0600 from the start, then renames over it: the secrets are
/// never readable by others, and a crash leaves either the old file or the new one.
fn write_private(path: &Path, secrets: &DevSecrets) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(secrets).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&json)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("devstack-secrets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn created_once_private_and_stable_across_loads() {
        let dir = temp_dir("stable");
        let (first, path) = DevSecrets::load_or_create(&dir).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, _) = DevSecrets::load_or_create(&dir).unwrap();
        assert_eq!(first.vault_keks(), second.vault_keks());
        assert_eq!(first.credential("gateway"), second.credential("gateway"));
        // A KEK the vault's keyring accepts: version 1, 32 bytes of standard base64.
        let (version, key) = first.vault_keks().split_once(':').unwrap();
        assert_eq!(version, "1");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap()
                .len(),
            32
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_caller_is_listed_with_a_fingerprint_not_its_credential() {
        let dir = temp_dir("callers");
        let (secrets, _) = DevSecrets::load_or_create(&dir).unwrap();
        let spec = secrets.vault_service_credentials();
        let gateway = secrets.credential("gateway");
        assert!(!gateway.is_empty());
        assert!(!spec.contains(&gateway));
        assert!(spec.contains(&format!(
            "gateway:{}",
            scifer_plumbing::service_identity::fingerprint(&gateway)
        )));
        assert_eq!(spec.split(',').count(), VAULT_CALLERS.len());
        assert_ne!(secrets.credential("gateway"), secrets.credential("inbox"));
        assert!(!format!("{secrets:?}").contains(&gateway));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_missing_a_service_gets_it_added_and_keeps_the_rest() {
        let dir = temp_dir("partial");
        let path = dir.join(FILE_NAME);
        fs::write(
            &path,
            r#"{"vault_keks":"1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","service_credentials":{"gateway":"g"}}"#,
        )
        .unwrap();
        let (secrets, _) = DevSecrets::load_or_create(&dir).unwrap();
        assert_eq!(secrets.credential("gateway"), "g");
        assert!(!secrets.credential("operator").is_empty());
        assert_eq!(
            secrets.vault_keks(),
            "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        );
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(dir).unwrap();
    }
}
