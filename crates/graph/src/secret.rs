//! Secret material: the app secret, access tokens and the appsecret_proof derived from both.
//!
//! None of these types implement `Display`, and their `Debug` (where it exists) prints `***`, so a
//! stray `{:?}` in a log line cannot leak them. Their heap buffers are wiped on drop.

use ring::hmac;
use zeroize::Zeroizing;

/// The Meta app secret. Used for `appsecret_proof`, the OAuth code exchange and the app token of
/// `debug_token`; never logged.
#[derive(Clone)]
pub struct AppSecret(Zeroizing<String>);

impl AppSecret {
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret(***)")
    }
}

/// An access token (user, Page, system-user or app). The vault builds it from decrypted bytes and
/// hands it to one call; it deliberately has no `Debug` or `Display`.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }

    /// The plaintext, for the vault to encrypt or compare. Keep the borrow short.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `appsecret_proof` = hex(HMAC-SHA256(key = app secret, message = access token)), which Meta
/// checks when "Require App Secret" is on, so a stolen token is useless without the secret.
pub(crate) fn appsecret_proof(secret: &AppSecret, token: &str) -> Zeroizing<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, token.as_bytes());
    Zeroizing::new(hex::encode(tag.as_ref()))
}

/// Replace every occurrence of any (non-trivial) secret in `text` by `***`. Meta error messages
/// and decode errors are built from response text we do not control; this is the last guard
/// before they become part of a `GraphError`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        // Very short strings would mangle ordinary text and are not real credentials.
        if secret.len() >= 8 && out.contains(secret) {
            out = out.replace(secret, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let proof = appsecret_proof(&AppSecret::new("Jefe".into()), "what do ya want for nothing?");
        assert_eq!(
            proof.as_str(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn appsecret_proof_depends_on_key_and_message() {
        let a = appsecret_proof(&AppSecret::new("secret-one".into()), "EAAGtoken");
        let b = appsecret_proof(&AppSecret::new("secret-two".into()), "EAAGtoken");
        let c = appsecret_proof(&AppSecret::new("secret-one".into()), "EAAGtoken2");
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn app_secret_debug_is_redacted() {
        let s = AppSecret::new("super-secret-value".into());
        let printed = format!("{s:?}");
        assert_eq!(printed, "AppSecret(***)");
    }

    #[test]
    fn redact_replaces_secrets_but_not_short_strings() {
        let out = redact(
            "Malformed access token EAAGabcdef123 (abc)",
            &["EAAGabcdef123", "abc"],
        );
        assert_eq!(out, "Malformed access token *** (abc)");
    }
}
