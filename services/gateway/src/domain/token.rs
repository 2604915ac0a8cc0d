//! Session tokens: 32 random bytes from the system RNG, hex-encoded for the client. Only their
//! SHA-256 is stored, so a copy of the database opens no session.

use ring::{
    digest,
    rand::{SecureRandom, SystemRandom},
};

const TOKEN_BYTES: usize = 32;

/// A session token as the client holds it. No `Display`, and `Debug` hides it.
pub struct SessionToken(String);

impl SessionToken {
    pub fn generate(rng: &SystemRandom) -> Option<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill(&mut bytes).ok()?;
        Some(Self(hex::encode(bytes)))
    }

    /// The token from an `authorization` value, `Bearer <token>`. Anything else is None: the
    /// caller answers one generic UNAUTHENTICATED whatever was wrong.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        let well_formed = scheme.eq_ignore_ascii_case("bearer")
            && token.len() == TOKEN_BYTES * 2
            && token.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| Self(token.to_ascii_lowercase()))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(digest::digest(&digest::SHA256, self.0.as_bytes())))
    }

    /// The token for the response that hands it to its owner; the only way out.
    pub fn reveal(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// An invitation token as the invited person receives it by email: 32 random bytes, hex. Like a
/// session token only its SHA-256 is stored; no `Display`, and `Debug` hides it.
pub struct InvitationToken(String);

impl InvitationToken {
    pub fn generate(rng: &SystemRandom) -> Option<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rng.fill(&mut bytes).ok()?;
        Some(Self(hex::encode(bytes)))
    }

    /// The token a caller offers; None unless it has a token's shape (the caller then gets the
    /// same answer as for an unknown token).
    pub fn offered(raw: &str) -> Option<Self> {
        let token = raw.trim();
        let well_formed = token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| Self(token.to_ascii_lowercase()))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(digest::digest(&digest::SHA256, self.0.as_bytes())))
    }

    /// The token for the invitation email's body; the only way out.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationToken(***)")
    }
}

/// The hex SHA-256 of a token: what `sessions.token_hash` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_and_parse_back_from_a_bearer_header() {
        let rng = SystemRandom::new();
        let token = SessionToken::generate(&rng).unwrap();
        let other = SessionToken::generate(&rng).unwrap();
        assert_ne!(token.hash(), other.hash());
        let hash = token.hash();
        assert_eq!(hash.as_str().len(), 64);
        let raw = token.reveal();
        assert_ne!(raw, hash.as_str(), "only the hash is stored");
        let parsed = SessionToken::from_authorization(&format!("Bearer {raw}")).unwrap();
        assert_eq!(parsed.hash(), hash);
        let parsed = SessionToken::from_authorization(&format!("bearer {}", raw.to_uppercase())).unwrap();
        assert_eq!(parsed.hash(), hash, "hex is case-insensitive");
        assert!(!format!("{parsed:?}").contains(&raw));
    }

    #[test]
    fn invitation_tokens_hash_like_session_tokens_and_hide_in_debug() {
        let rng = SystemRandom::new();
        let token = InvitationToken::generate(&rng).unwrap();
        let raw = token.expose().to_string();
        assert_eq!(raw.len(), 64);
        assert_ne!(token.hash().as_str(), raw);
        let offered = InvitationToken::offered(&format!(" {} ", raw.to_uppercase())).unwrap();
        assert_eq!(offered.hash(), token.hash());
        assert!(!format!("{token:?}").contains(&raw));
        assert!(InvitationToken::offered("abc").is_none());
        assert!(InvitationToken::offered(&"z".repeat(64)).is_none());
    }

    #[test]
    fn malformed_authorization_values_are_no_token() {
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearer xyz",
            &format!("Token {}", "a".repeat(64)),
        ] {
            assert!(SessionToken::from_authorization(bad).is_none(), "{bad:?}");
        }
    }
}
