//! Webhook authenticity: the `X-Hub-Signature-256` header on POSTs and the verify token of the GET
//! handshake.
//!
//! The MAC is always computed over the raw request bytes. Meta signs the exact bytes it sends
//! (non-ASCII escaped as `\uXXXX`), so re-serializing parsed JSON before verifying breaks valid
//! signatures.

use ring::hmac;
use ring::rand::SystemRandom;

const PREFIX: &[u8] = b"sha256=";
const MAC_LEN: usize = 32;

/// Why a POST's signature was refused. Carries no secret, MAC or body material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header: answer 401.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is present but does not authenticate the body: answer 403.
    #[error("invalid X-Hub-Signature-256 header: {0}")]
    Invalid(InvalidSignature),
}

/// Detail of [`SignatureError::Invalid`], for logs and metrics; both answer 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSignature {
    /// Not `sha256=` followed by 64 hex digits (this includes a `sha1=` value).
    #[error("malformed value")]
    Malformed,
    /// Well formed, but not the MAC of this body under this secret: a wrong secret or tampering.
    #[error("signature mismatch")]
    Mismatch,
}

/// Verifies `X-Hub-Signature-256: sha256=<hex>` against the raw `body`.
///
/// Hex digits are accepted in either case: Meta sends lowercase, and rejecting uppercase would
/// add no security since the decoded MAC is what is compared. Surrounding ASCII whitespace is
/// tolerated; the `sha256=` prefix must be lowercase. The comparison is constant time
/// (`ring::hmac::verify`).
pub fn verify_sha256(app_secret: &[u8], body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim_ascii();
    let hex_mac = header
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Invalid(InvalidSignature::Malformed))?;
    let mut mac = [0u8; MAC_LEN];
    hex::decode_to_slice(hex_mac, &mut mac)
        .map_err(|_| SignatureError::Invalid(InvalidSignature::Malformed))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret);
    hmac::verify(&key, body, &mac).map_err(|_| SignatureError::Invalid(InvalidSignature::Mismatch))
}

/// The `X-Hub-Signature-256` value Meta would send for `body`: `sha256=<lowercase hex>`.
pub fn sign_sha256(app_secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, app_secret);
    let tag = hmac::sign(&key, body);
    format!("sha256={}", hex::encode(tag.as_ref()))
}

/// Whether the `hub.verify_token` of the GET handshake equals the configured token.
///
/// Always false when `configured` is empty, so an unset token can never be matched. Both values
/// are MACed under a fresh random key and the MACs compared in constant time, which hides the
/// position of the first differing byte and the configured token's length. Fails closed (false)
/// if the system RNG is unavailable.
pub fn verify_token_matches(configured: &str, given: &str) -> bool {
    if configured.is_empty() {
        return false;
    }
    let Ok(key) = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()) else {
        return false;
    };
    let expected = hmac::sign(&key, configured.as_bytes());
    hmac::verify(&key, given.as_bytes(), expected.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret-for-tests";
    const BODY: &[u8] = br#"{"object":"page","entry":[]}"#;

    #[test]
    fn signed_body_verifies() {
        let header = sign_sha256(SECRET, BODY);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert_eq!(verify_sha256(SECRET, BODY, Some(header.as_bytes())), Ok(()));
    }

    #[test]
    fn known_vector_matches() {
        // RFC 4231 test case 2: key "Jefe".
        let header = sign_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            header,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn missing_header_is_missing() {
        assert_eq!(verify_sha256(SECRET, BODY, None), Err(SignatureError::Missing));
    }

    #[test]
    fn flipped_byte_in_body_is_mismatch() {
        let header = sign_sha256(SECRET, BODY);
        let mut tampered = BODY.to_vec();
        tampered[2] ^= 0x01;
        assert_eq!(
            verify_sha256(SECRET, &tampered, Some(header.as_bytes())),
            Err(SignatureError::Invalid(InvalidSignature::Mismatch))
        );
    }

    #[test]
    fn flipped_digit_in_header_is_mismatch() {
        let mut header = sign_sha256(SECRET, BODY).into_bytes();
        let last = header.len() - 1;
        header[last] = if header[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify_sha256(SECRET, BODY, Some(&header)),
            Err(SignatureError::Invalid(InvalidSignature::Mismatch))
        );
    }

    #[test]
    fn wrong_secret_is_mismatch() {
        let header = sign_sha256(b"another-secret", BODY);
        assert_eq!(
            verify_sha256(SECRET, BODY, Some(header.as_bytes())),
            Err(SignatureError::Invalid(InvalidSignature::Mismatch))
        );
    }

    #[test]
    fn sha1_value_is_malformed() {
        // A correct-looking legacy sha1 value (40 hex digits) must never satisfy the sha256 check.
        let header = b"sha1=0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            verify_sha256(SECRET, BODY, Some(header)),
            Err(SignatureError::Invalid(InvalidSignature::Malformed))
        );
    }

    #[test]
    fn malformed_values_are_invalid_not_missing() {
        let good = sign_sha256(SECRET, BODY);
        let hex = &good["sha256=".len()..];
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"sha256=".to_vec(),
            hex.as_bytes().to_vec(),
            format!("SHA256={hex}").into_bytes(),
            format!("sha256={}", &hex[..62]).into_bytes(),
            format!("sha256={hex}00").into_bytes(),
            format!("sha256={}zz", &hex[..62]).into_bytes(),
            format!("sha256= {hex}").into_bytes(),
        ];
        for case in cases {
            assert_eq!(
                verify_sha256(SECRET, BODY, Some(&case)),
                Err(SignatureError::Invalid(InvalidSignature::Malformed)),
                "{}",
                String::from_utf8_lossy(&case)
            );
        }
    }

    #[test]
    fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let good = sign_sha256(SECRET, BODY);
        let upper = format!(" sha256={}\t", good["sha256=".len()..].to_ascii_uppercase());
        assert_eq!(verify_sha256(SECRET, BODY, Some(upper.as_bytes())), Ok(()));
    }

    #[test]
    fn only_the_exact_bytes_verify_not_a_reserialization() {
        // Meta sends non-ASCII escaped; the same JSON with raw UTF-8 is a different byte string.
        let escaped = br#"{"text":"caf\u00e9"}"#;
        let raw_utf8 = "{\"text\":\"café\"}".as_bytes();
        let parsed_escaped: serde_json::Value = serde_json::from_slice(escaped).unwrap();
        let parsed_raw: serde_json::Value = serde_json::from_slice(raw_utf8).unwrap();
        assert_eq!(parsed_escaped, parsed_raw);

        let header = sign_sha256(SECRET, escaped);
        assert_eq!(verify_sha256(SECRET, escaped, Some(header.as_bytes())), Ok(()));
        assert_eq!(
            verify_sha256(SECRET, raw_utf8, Some(header.as_bytes())),
            Err(SignatureError::Invalid(InvalidSignature::Mismatch))
        );
        let reserialized = serde_json::to_vec(&parsed_escaped).unwrap();
        assert_eq!(
            verify_sha256(SECRET, &reserialized, Some(header.as_bytes())),
            Err(SignatureError::Invalid(InvalidSignature::Mismatch))
        );
    }

    #[test]
    fn errors_do_not_carry_secret_or_mac() {
        let header = sign_sha256(b"another-secret", BODY);
        let err = verify_sha256(SECRET, BODY, Some(header.as_bytes())).unwrap_err();
        let shown = format!("{err} {err:?}");
        let expected_hex = &sign_sha256(SECRET, BODY)["sha256=".len()..];
        assert!(!shown.contains(expected_hex));
        assert!(!shown.contains(&header["sha256=".len()..]));
        assert!(!shown.contains("app-secret-for-tests"));
    }

    #[test]
    fn verify_token_matches_only_identical_tokens() {
        assert!(verify_token_matches("my-secret-token", "my-secret-token"));
        assert!(!verify_token_matches("my-secret-token", "my-secret-tokem"));
        assert!(!verify_token_matches("my-secret-token", "my-secret-token "));
        assert!(!verify_token_matches("my-secret-token", "my-secret"));
        assert!(!verify_token_matches("my-secret-token", ""));
    }

    #[test]
    fn empty_configured_token_never_matches() {
        assert!(!verify_token_matches("", ""));
        assert!(!verify_token_matches("", "anything"));
    }
}
