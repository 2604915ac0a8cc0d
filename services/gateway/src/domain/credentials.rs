//! Passwords: accepted by length, hashed with Argon2id at OWASP's recommended cost, verified in
//! constant time. The plaintext lives only in a [`Password`], which never prints.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use super::Invalid;

/// Shortest accepted password, in characters. Length is what makes a password strong; no other
/// composition rule is imposed (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes: bounds the work one request can ask of the hasher.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password from a request. `Debug` prints `[REDACTED]` (secrecy), there is no `Display`.
pub struct Password(SecretString);

impl Password {
    /// A new password (sign-up, password change): the length rules apply.
    pub fn parse_new(raw: String) -> Result<Self, Invalid> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Invalid("password must be at least 12 characters"));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(Invalid("password must be at most 1024 bytes"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// A password offered to prove who the caller is: no length rule (the rules may have changed
    /// since it was set), only the size bound.
    pub fn offered(raw: String) -> Result<Self, Invalid> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(Invalid("password must be at most 1024 bytes"));
        }
        Ok(Self(SecretString::from(raw)))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot draw a salt from the system RNG")]
    Rng,
    #[error("argon2: {0}")]
    Argon2(String),
}

/// Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane). Hashes are PHC strings that carry
/// their own parameters, so raising the cost later still verifies older hashes.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    rng: SystemRandom,
    /// A hash of nothing anyone knows, verified against when the account does not exist, so that
    /// a login costs the same whether or not the email has an account.
    decoy: String,
}

impl PasswordHasher {
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError::Argon2(e.to_string()))?;
        let mut hasher = Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            rng: SystemRandom::new(),
            decoy: String::new(),
        };
        let mut secret = [0u8; 32];
        hasher.rng.fill(&mut secret).map_err(|_| HashError::Rng)?;
        hasher.decoy = hasher.hash(&Password(SecretString::from(hex::encode(secret))))?;
        Ok(hasher)
    }

    /// The PHC string to store. CPU-bound for tens of milliseconds: call from a blocking thread.
    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        self.rng.fill(&mut salt).map_err(|_| HashError::Rng)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
        self.argon2
            .hash_password(password.0.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError::Argon2(e.to_string()))
    }

    /// Whether `password` matches `stored`; with no stored hash, verifies against the decoy and
    /// answers false. A stored hash that does not parse is an error, not a mismatch.
    pub fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool, HashError> {
        let known = stored.is_some();
        let parsed =
            PasswordHash::new(stored.unwrap_or(&self.decoy)).map_err(|e| HashError::Argon2(e.to_string()))?;
        let matches = self
            .argon2
            .verify_password(password.0.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_shorter_than_12_characters_are_refused() {
        assert!(Password::parse_new("elevenchars".into()).is_err());
        assert!(Password::parse_new("twelve chars".into()).is_ok());
        // Characters, not bytes.
        assert!(Password::parse_new("éééééééééé".into()).is_err());
        assert!(Password::parse_new("x".repeat(1025)).is_err());
        assert!(Password::offered("short".into()).is_ok());
    }

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies_only_its_password() {
        let hasher = PasswordHasher::new().unwrap();
        let password = Password::parse_new("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify(&password, Some(&hash)).unwrap());
        let wrong = Password::offered("correct horse battery!".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).unwrap());
        assert!(
            !hasher.verify(&password, None).unwrap(),
            "no account never matches"
        );
        assert!(hasher.verify(&password, Some("not a phc string")).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::offered("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }
}
