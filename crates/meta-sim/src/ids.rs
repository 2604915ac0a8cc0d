//! Identifiers shaped like Meta's.
//!
//! Uniqueness comes from a random v4 UUID per call rather than a process-wide counter, so builders
//! stay free of global state and two simulators in one test binary can never collide.

use uuid::Uuid;

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 without padding; Meta's ids are base64-ish blobs, and pulling in a base64 crate for
/// a dozen lines is not worth a new workspace dependency.
fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// A Messenger message id: `m_` followed by a url-safe base64 blob.
pub fn messenger_mid() -> String {
    let a = Uuid::new_v4();
    let b = Uuid::new_v4();
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(a.as_bytes());
    bytes.extend_from_slice(b.as_bytes());
    format!("m_{}", base64(&bytes, B64_URL, false))
}

/// An Instagram message id. Real ones are base64 of an `ig_message_item:...` descriptor, which
/// is why they all start with `aWdf`; we mimic that so receivers see the familiar prefix.
pub fn instagram_mid(ig_account_id: &str) -> String {
    let inner = format!(
        "ig_message_item:1:IGMessageData:{ig_account_id}:{}",
        Uuid::new_v4().simple()
    );
    base64(inner.as_bytes(), B64_STD, false)
}

/// A WhatsApp message id: `wamid.` + base64 of a small protobuf-like record holding the
/// customer's phone number (so a 12-digit number yields the well-known `HBgM` prefix).
pub fn wamid(customer_wa_id: &str) -> String {
    let phone = customer_wa_id.as_bytes();
    let mut bytes = vec![0x1C, 0x18, u8::try_from(phone.len()).unwrap_or(u8::MAX)];
    bytes.extend_from_slice(phone);
    bytes.extend_from_slice(&[0x15, 0x02, 0x00, 0x12, 0x18, 0x14]);
    let tail = Uuid::new_v4().simple().to_string().to_uppercase();
    bytes.extend_from_slice(&tail.as_bytes()[..20]);
    bytes.push(0x00);
    format!("wamid.{}", base64(&bytes, B64_STD, true))
}

/// A numeric Graph object id (comments, posts, media). Meta's are 15–17 digit decimals.
pub fn numeric_id() -> String {
    let n = Uuid::new_v4().as_u128() % 9_000_000_000_000_000;
    format!("{}", 1_000_000_000_000_000 + n)
}

/// A WhatsApp media id (decimal, like the ids returned by the media upload endpoint).
pub fn media_id() -> String {
    numeric_id()
}

/// A hex digest that looks like the `sha256` WhatsApp attaches to media; the simulator never
/// serves the media, so it only has to be well-formed.
pub fn fake_sha256() -> String {
    let a = Uuid::new_v4().simple().to_string();
    let b = Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b"", B64_STD, true), "");
        assert_eq!(base64(b"f", B64_STD, true), "Zg==");
        assert_eq!(base64(b"fo", B64_STD, true), "Zm8=");
        assert_eq!(base64(b"foo", B64_STD, true), "Zm9v");
        assert_eq!(base64(b"foob", B64_STD, false), "Zm9vYg");
        assert_eq!(base64(&[0xfb, 0xff], B64_URL, false), "-_8");
    }

    #[test]
    fn ids_have_meta_prefixes_and_are_unique() {
        let a = messenger_mid();
        let b = messenger_mid();
        assert!(a.starts_with("m_"));
        assert_ne!(a, b);
        assert!(instagram_mid("17841400000000000").starts_with("aWdf"));
        // 12-digit number -> length byte 0x0C -> "HBgM", as in real wamids.
        let w = wamid("491701234567");
        assert!(w.starts_with("wamid.HBgM"), "{w}");
        assert_ne!(w, wamid("491701234567"));
        assert_eq!(numeric_id().len(), 16);
    }
}
