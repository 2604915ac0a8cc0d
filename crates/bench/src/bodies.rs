//! Signed Messenger deliveries of realistic size, one unique `mid` per request.
//!
//! A handful of templates (different customers and texts) are built once with scifer-meta-sim's
//! builders and Meta's wire encoding; each request copies one, writes its sequence number into the
//! last 16 characters of the `mid` and signs the result. That costs a 2 KB copy plus one HMAC
//! (~1.5 µs), so the driver stays cheap while JetStream's dedup window never sees the same body
//! twice.

use bytes::Bytes;
use ring::hmac;
use scifer_meta_sim::webhooks::{Encoding, messenger};
use serde_json::json;

use crate::error::{BenchError, Result};

/// The Page every delivery is addressed to; the pipeline phase connects a channel for it.
pub const PAGE_ID: &str = "104857600000777";
/// The app secret shared by the driver and the receivers under test.
pub const APP_SECRET: &str = "bench-app-secret";
/// The verify token webhook-ingest requires at startup (never exercised here).
pub const VERIFY_TOKEN: &str = "bench-verify-token";

const SEQ_DIGITS: usize = 16;
const PLACEHOLDER: &str = "0000000000000000";
/// Messenger mids are `m_` plus a 43-character blob; we keep that length.
const MID_LEN: usize = 45;

/// One request body and its `X-Hub-Signature-256` header value.
pub struct SignedBody {
    pub body: Bytes,
    /// `sha256=<hex>`.
    pub signature: String,
}

struct Template {
    bytes: Vec<u8>,
    /// Offset of the sequence digits inside `bytes`.
    slot: usize,
}

pub struct BodyFactory {
    templates: Vec<Template>,
    key: hmac::Key,
}

impl BodyFactory {
    /// `variants` templates (one customer each) of at least `target_len` bytes.
    pub fn new(target_len: usize, variants: usize) -> Result<Self> {
        let templates = (0..variants.max(1))
            .map(|i| template(i, target_len))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            templates,
            key: hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes()),
        })
    }

    /// The body carrying sequence number `seq`.
    pub fn make(&self, seq: u64) -> SignedBody {
        let (bytes, _) = self.make_unsigned(seq);
        let signature = self.signature(&bytes);
        SignedBody {
            body: bytes,
            signature,
        }
    }

    /// `X-Hub-Signature-256` for any body (`sha256=<hex>` under [`APP_SECRET`]).
    pub fn signature(&self, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, body);
        format!("sha256={}", hex::encode(tag.as_ref()))
    }

    /// The body carrying `seq` without a signature, and a message id as long as a digest: what the
    /// raw JetStream phase publishes, so it pays no HMAC the receivers would not pay either.
    pub fn make_unsigned(&self, seq: u64) -> (Bytes, String) {
        let index = usize::try_from(seq % self.templates.len() as u64).unwrap_or_default();
        let template = &self.templates[index];
        let mut bytes = template.bytes.clone();
        let digits = format!("{seq:016x}");
        bytes[template.slot..template.slot + SEQ_DIGITS].copy_from_slice(digits.as_bytes());
        (Bytes::from(bytes), format!("{seq:064x}"))
    }

    /// Sizes of the templates (min, max), for the report.
    pub fn size_range(&self) -> (usize, usize) {
        let sizes = self.templates.iter().map(|t| t.bytes.len());
        (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0))
    }
}

/// The sequence number inside a `mid` made by [`BodyFactory::make`].
pub fn seq_of_mid(mid: &str) -> Option<u64> {
    if mid.len() != MID_LEN {
        return None;
    }
    let digits = mid.get(MID_LEN - SEQ_DIGITS..)?;
    u64::from_str_radix(digits, 16).ok()
}

const SENTENCES: [&str; 8] = [
    "Hi! I ordered the linen shirt in navy last Tuesday (order #48213) and the tracking page still says \"label created\".",
    "Could you check whether it actually left the warehouse? I need it before Saturday because it's for my brother's wedding.",
    "If it can't arrive in time, I'd rather switch to the express option or pick it up at the store on Rue Sainte-Catherine.",
    "Also, the size guide says M fits a 40\" chest but the reviews mention it runs small \u{2014} should I exchange it for an L?",
    "I paid with the card ending 4417; the confirmation email went to my work address, not the one on my profile.",
    "Merci beaucoup, and sorry for the long message \u{1F642} I tried the chat on the website first but it kept timing out.",
    "One more thing: the discount code SPRING15 didn't apply at checkout even though the banner said it was valid until the 30th.",
    "My phone number is on the order if it's easier to call; I'm available after 5pm most days this week.",
];

fn template(variant: usize, target_len: usize) -> Result<Template> {
    let psid = (6_120_000_000_000_000_u64 + variant as u64 * 7_919).to_string();
    let blob = scifer_meta_sim::ids::messenger_mid();
    let prefix = blob
        .get(..MID_LEN - SEQ_DIGITS)
        .ok_or_else(|| BenchError::msg("scifer-meta-sim made a shorter mid than expected"))?;
    let mid = format!("{prefix}{PLACEHOLDER}");

    let mut text = String::new();
    let mut next = variant;
    loop {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(SENTENCES[next % SENTENCES.len()]);
        next += 1;
        let bytes = messenger::text(PAGE_ID, &psid, &text)
            .mid(mid.as_str())
            .field("nlp", nlp())
            .into_delivery()
            .encode(Encoding::META);
        if bytes.len() >= target_len || next - variant > 64 {
            let slot = find(&bytes, mid.as_bytes())
                .ok_or_else(|| BenchError::msg("mid not found in the encoded delivery"))?
                + prefix.len();
            return Ok(Template { bytes, slot });
        }
    }
}

/// Meta's built-in NLP block, which Pages with NLP enabled receive on every text message.
fn nlp() -> serde_json::Value {
    json!({
        "intents": [{ "id": "802714173621574", "name": "order_status", "confidence": 0.9812 }],
        "entities": {
            "wit$datetime:datetime": [{
                "id": "4d3a0e26-8c74-4c8f-a1e9-0f1b1f6b2f6f", "name": "wit$datetime", "role": "datetime",
                "start": 41, "end": 55, "body": "last Tuesday", "confidence": 0.9561,
                "type": "value", "grain": "day", "value": "2026-11-24T00:00:00.000-08:00"
            }]
        },
        "traits": {
            "wit$sentiment": [{ "id": "5ac2b50a-44e4-466e-9d49-bad6bd40092c", "value": "neutral", "confidence": 0.5469 }],
            "wit$greetings": [{ "id": "5900cc2d-41b7-45b2-b21f-b950d3ae3c5c", "value": "true", "confidence": 0.9999 }]
        },
        "detected_locales": [{ "locale": "en_XX", "confidence": 0.9977 }]
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_unique_signed_and_about_the_target_size() {
        let factory = BodyFactory::new(2048, 4).unwrap();
        let (min, max) = factory.size_range();
        assert!(min >= 2048 && max < 2400, "{min}..{max}");
        let a = factory.make(5);
        let b = factory.make(9);
        assert_ne!(a.body, b.body);
        let key = hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes());
        let mac = hex::decode(a.signature.strip_prefix("sha256=").unwrap()).unwrap();
        assert!(hmac::verify(&key, &a.body, &mac).is_ok());

        let value: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(value["object"], "page");
        assert_eq!(value["entry"][0]["id"], PAGE_ID);
        let mid = value["entry"][0]["messaging"][0]["message"]["mid"]
            .as_str()
            .unwrap();
        assert!(mid.starts_with("m_"));
        assert_eq!(seq_of_mid(mid), Some(5));
    }

    #[test]
    fn foreign_mids_have_no_sequence() {
        assert_eq!(seq_of_mid("m_short"), None);
        assert_eq!(seq_of_mid(&scifer_meta_sim::ids::messenger_mid()), None);
    }
}
