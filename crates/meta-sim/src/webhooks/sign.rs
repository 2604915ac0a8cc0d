//! `X-Hub-Signature-256` / `X-Hub-Signature` computation over exact body bytes.

use ring::hmac;

use crate::secret::AppSecret;

/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_256_HEADER: &str = "X-Hub-Signature-256";
/// Legacy header carrying `sha1=<hex>`.
pub const SIGNATURE_SHA1_HEADER: &str = "X-Hub-Signature";

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn sha256_header_value(secret: &AppSecret, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// `sha1=<lowercase hex HMAC-SHA1(secret, body)>`, the header Meta still sends alongside.
pub fn sha1_header_value(secret: &AppSecret, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.expose().as_bytes());
    format!("sha1={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// Flip one hex digit of a `algo=<hex>` header value: same length and format, wrong MAC.
pub fn tamper(header_value: &str) -> String {
    let mut bytes = header_value.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last = if *last == b'0' { b'1' } else { b'0' };
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = AppSecret::new("Jefe");
        assert_eq!(
            sha256_header_value(&s, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc2202_case_2_sha1() {
        let s = AppSecret::new("Jefe");
        assert_eq!(
            sha1_header_value(&s, b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn tamper_changes_exactly_one_char() {
        let v = "sha256=abc0";
        let t = tamper(v);
        assert_eq!(t.len(), v.len());
        assert_ne!(t, v);
        assert_eq!(tamper("sha1=1"), "sha1=0");
    }
}
