//! Delivering webhooks over HTTP the way Meta does, plus the ways tests need it to misbehave.

use std::time::Duration;

use http::StatusCode;
use reqwest::header::CONTENT_TYPE;

use super::delivery::Delivery;
use super::encode::Encoding;
use super::sign::{self, SIGNATURE_256_HEADER, SIGNATURE_SHA1_HEADER};
use crate::http_client;
use crate::secret::AppSecret;

/// WhatsApp's documented maximum payload size; the default for [`SendMode::Oversized`] tests.
pub const WHATSAPP_MAX_PAYLOAD_BYTES: usize = 3 * 1024 * 1024;

/// Meta's documented response budget for messaging webhooks; a slower answer is a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to sign and shape one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendMode {
    /// What Meta does: sign the exact bytes sent.
    Valid,
    /// Correct body, one hex digit of each signature flipped.
    TamperedSignature,
    /// Signed, then the body changed (a trailing space appended: still valid JSON).
    TamperedBody,
    /// Signed with a different secret.
    WrongSecret,
    /// No signature headers at all.
    MissingSignature,
    /// Only the legacy `X-Hub-Signature: sha1=...`, no sha256 header.
    Sha1Only,
    /// Signed over the sender's encoding but sent in this one (e.g. [`Encoding::RAW_UTF8`]):
    /// the bug a receiver has when it verifies a re-serialization instead of the raw bytes.
    /// Identical encodings give a valid delivery.
    Reserialized(Encoding),
    /// Body padded with trailing whitespace to `total_bytes` (valid JSON, valid signature), to
    /// exercise body-size limits.
    Oversized {
        /// Final body length.
        total_bytes: usize,
    },
}

/// Exactly what will go on the wire, built without any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// Body bytes.
    pub body: Vec<u8>,
    /// Headers besides `Content-Type: application/json` and the user agent.
    pub headers: Vec<(&'static str, String)>,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// HTTP status.
    pub status: StatusCode,
    /// Response body text.
    pub body: String,
}

impl SendOutcome {
    /// Meta only treats `200` as accepted.
    pub fn accepted(&self) -> bool {
        self.status == StatusCode::OK
    }
}

/// Failures of the sender itself (not HTTP error statuses, which are outcomes).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The reqwest client could not be built.
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request did not complete (connection refused, timeout, ...).
    #[error("webhook request failed")]
    Request(#[source] reqwest::Error),
    /// The callback URL does not parse.
    #[error("invalid webhook URL `{url}`")]
    InvalidUrl {
        /// The offending URL.
        url: String,
    },
    /// An ordering for [`WebhookSender::send_in_order`] that is not a permutation.
    #[error("order {order:?} is not a permutation of 0..{len}")]
    BadOrder {
        /// The order given.
        order: Vec<usize>,
        /// Number of deliveries.
        len: usize,
    },
}

/// Signs and POSTs deliveries. Cheap to clone (the reqwest client is shared).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    secret: AppSecret,
    encoding: Encoding,
    legacy_sha1: bool,
}

impl WebhookSender {
    /// A sender signing with `secret`, Meta's encoding, both signature headers, 5 s timeout.
    pub fn new(secret: AppSecret) -> Result<Self, SendError> {
        Self::with_timeout(secret, DEFAULT_TIMEOUT)
    }

    /// As [`WebhookSender::new`] with another per-request timeout.
    pub fn with_timeout(secret: AppSecret, timeout: Duration) -> Result<Self, SendError> {
        let client = http_client::build(timeout).map_err(SendError::Client)?;
        Ok(Self {
            client,
            secret,
            encoding: Encoding::META,
            legacy_sha1: true,
        })
    }

    /// Change the body encoding (e.g. turn off `\/` escaping, which is UNCERTAIN for Meta).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Whether to send the legacy `X-Hub-Signature` next to the sha256 one (default: yes, as
    /// Meta historically did; whether it still does everywhere is UNCERTAIN).
    pub fn legacy_sha1(mut self, on: bool) -> Self {
        self.legacy_sha1 = on;
        self
    }

    /// The underlying client, e.g. for the handshake.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Build body and headers for `delivery` under `mode`.
    pub fn prepare(&self, delivery: &Delivery, mode: &SendMode) -> PreparedRequest {
        let signed = delivery.encode(self.encoding);
        let valid_headers = |body: &[u8]| {
            let mut h = vec![(
                SIGNATURE_256_HEADER,
                sign::sha256_header_value(&self.secret, body),
            )];
            if self.legacy_sha1 {
                h.push((SIGNATURE_SHA1_HEADER, sign::sha1_header_value(&self.secret, body)));
            }
            h
        };
        match mode {
            SendMode::Valid => PreparedRequest {
                headers: valid_headers(&signed),
                body: signed,
            },
            SendMode::TamperedSignature => {
                let headers = valid_headers(&signed)
                    .into_iter()
                    .map(|(k, v)| (k, sign::tamper(&v)))
                    .collect();
                PreparedRequest {
                    body: signed,
                    headers,
                }
            }
            SendMode::TamperedBody => {
                let headers = valid_headers(&signed);
                let mut body = signed;
                body.push(b' ');
                PreparedRequest { body, headers }
            }
            SendMode::WrongSecret => {
                let wrong = AppSecret::new(format!("{}-not-the-app-secret", self.secret.expose()));
                let mut headers = vec![(SIGNATURE_256_HEADER, sign::sha256_header_value(&wrong, &signed))];
                if self.legacy_sha1 {
                    headers.push((SIGNATURE_SHA1_HEADER, sign::sha1_header_value(&wrong, &signed)));
                }
                PreparedRequest {
                    body: signed,
                    headers,
                }
            }
            SendMode::MissingSignature => PreparedRequest {
                body: signed,
                headers: Vec::new(),
            },
            SendMode::Sha1Only => PreparedRequest {
                headers: vec![(
                    SIGNATURE_SHA1_HEADER,
                    sign::sha1_header_value(&self.secret, &signed),
                )],
                body: signed,
            },
            SendMode::Reserialized(other) => PreparedRequest {
                headers: valid_headers(&signed),
                body: delivery.encode(*other),
            },
            SendMode::Oversized { total_bytes } => {
                let mut body = signed;
                if body.len() < *total_bytes {
                    body.resize(*total_bytes, b' ');
                }
                PreparedRequest {
                    headers: valid_headers(&body),
                    body,
                }
            }
        }
    }

    /// POST a prepared request once.
    pub async fn send_prepared(&self, url: &str, req: &PreparedRequest) -> Result<SendOutcome, SendError> {
        let url = reqwest::Url::parse(url).map_err(|_| SendError::InvalidUrl { url: url.to_owned() })?;
        let mut builder = self.client.post(url).header(CONTENT_TYPE, "application/json");
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let resp = builder
            .body(req.body.clone())
            .send()
            .await
            .map_err(SendError::Request)?;
        let status = resp.status();
        let body = resp.text().await.map_err(SendError::Request)?;
        Ok(SendOutcome { status, body })
    }

    /// POST `delivery` once under `mode`.
    pub async fn send(
        &self,
        url: &str,
        delivery: &Delivery,
        mode: &SendMode,
    ) -> Result<SendOutcome, SendError> {
        self.send_prepared(url, &self.prepare(delivery, mode)).await
    }

    /// POST the same bytes twice (Meta's duplicate delivery); receivers must de-duplicate.
    pub async fn send_duplicate(
        &self,
        url: &str,
        delivery: &Delivery,
    ) -> Result<[SendOutcome; 2], SendError> {
        let req = self.prepare(delivery, &SendMode::Valid);
        let first = self.send_prepared(url, &req).await?;
        let second = self.send_prepared(url, &req).await?;
        Ok([first, second])
    }

    /// POST `deliveries` one by one in the given `order` (a permutation of their indices), e.g.
    /// `[2, 1, 0]` on a WhatsApp status lifecycle to send `read` before `delivered`. Outcomes
    /// are returned in sending order.
    pub async fn send_in_order(
        &self,
        url: &str,
        deliveries: &[Delivery],
        order: &[usize],
    ) -> Result<Vec<SendOutcome>, SendError> {
        let mut seen = vec![false; deliveries.len()];
        let is_permutation = order.len() == deliveries.len()
            && order
                .iter()
                .all(|&i| seen.get_mut(i).is_some_and(|s| !std::mem::replace(s, true)));
        if !is_permutation {
            return Err(SendError::BadOrder {
                order: order.to_vec(),
                len: deliveries.len(),
            });
        }
        let mut outcomes = Vec::with_capacity(order.len());
        for &i in order {
            if let Some(d) = deliveries.get(i) {
                outcomes.push(self.send(url, d, &SendMode::Valid).await?);
            }
        }
        Ok(outcomes)
    }

    /// POST `deliveries` last to first.
    pub async fn send_reversed(
        &self,
        url: &str,
        deliveries: &[Delivery],
    ) -> Result<Vec<SendOutcome>, SendError> {
        let order: Vec<usize> = (0..deliveries.len()).rev().collect();
        self.send_in_order(url, deliveries, &order).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::messenger;
    use ring::hmac;

    fn sender() -> WebhookSender {
        WebhookSender::new(AppSecret::new("s3cret")).unwrap()
    }

    fn delivery() -> Delivery {
        messenger::text("1", "2", "Olá 😀 https://x.y/z")
            .mid("m_1")
            .timestamp_ms(1)
            .into_delivery()
    }

    fn header<'a>(r: &'a PreparedRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn valid_signs_the_exact_escaped_bytes() {
        let r = sender().prepare(&delivery(), &SendMode::Valid);
        assert!(r.body.is_ascii());
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.contains(r"Ol\u00e1 \ud83d\ude00 https:\/\/x.y\/z"), "{body}");
        // Independent HMAC over the same bytes.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let expected = format!("sha256={}", hex::encode(hmac::sign(&key, &r.body).as_ref()));
        assert_eq!(header(&r, SIGNATURE_256_HEADER), Some(expected.as_str()));
        assert!(header(&r, SIGNATURE_SHA1_HEADER).unwrap().starts_with("sha1="));
        assert!(
            sender()
                .legacy_sha1(false)
                .prepare(&delivery(), &SendMode::Valid)
                .headers
                .len()
                == 1
        );
    }

    #[test]
    fn modes_break_exactly_one_thing() {
        let s = sender();
        let d = delivery();
        let valid = s.prepare(&d, &SendMode::Valid);

        let t = s.prepare(&d, &SendMode::TamperedSignature);
        assert_eq!(t.body, valid.body);
        assert_ne!(
            header(&t, SIGNATURE_256_HEADER),
            header(&valid, SIGNATURE_256_HEADER)
        );
        assert_eq!(
            header(&t, SIGNATURE_256_HEADER).unwrap().len(),
            header(&valid, SIGNATURE_256_HEADER).unwrap().len()
        );

        let tb = s.prepare(&d, &SendMode::TamperedBody);
        assert_eq!(tb.headers, valid.headers);
        assert_ne!(tb.body, valid.body);

        let w = s.prepare(&d, &SendMode::WrongSecret);
        assert_eq!(w.body, valid.body);
        assert_ne!(w.headers, valid.headers);

        assert!(s.prepare(&d, &SendMode::MissingSignature).headers.is_empty());

        let sha1 = s.prepare(&d, &SendMode::Sha1Only);
        assert_eq!(sha1.headers.len(), 1);
        assert_eq!(
            header(&sha1, SIGNATURE_SHA1_HEADER),
            header(&valid, SIGNATURE_SHA1_HEADER)
        );

        let re = s.prepare(&d, &SendMode::Reserialized(Encoding::RAW_UTF8));
        assert_eq!(re.headers, valid.headers);
        assert!(!re.body.is_ascii());
        let same = s.prepare(&d, &SendMode::Reserialized(Encoding::META));
        assert_eq!(same, valid);

        let big = s.prepare(&d, &SendMode::Oversized { total_bytes: 10_000 });
        assert_eq!(big.body.len(), 10_000);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let expected = format!("sha256={}", hex::encode(hmac::sign(&key, &big.body).as_ref()));
        assert_eq!(header(&big, SIGNATURE_256_HEADER), Some(expected.as_str()));
        assert!(serde_json::from_slice::<serde_json::Value>(&big.body).is_ok());
    }
}
