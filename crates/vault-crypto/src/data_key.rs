use ring::aead::LessSafeKey;
use zeroize::Zeroizing;

use crate::aead::{self, AadBuilder, KEY_LEN, MIN_BLOB_LEN};
use crate::{CryptoError, Plaintext};

/// Domain string at the start of every token blob's associated data.
const TOKEN_DOMAIN: &str = "scifer/token/v1";

/// Where a sealed token belongs. All four fields go into the associated data, so a blob copied
/// to another row, channel, token kind or workspace does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAad<'a> {
    pub workspace_id: &'a str,
    pub channel_id: &'a str,
    pub token_kind: &'a str,
    pub record_id: &'a str,
}

impl TokenAad<'_> {
    /// `len|"scifer/token/v1" | header(5) | len|workspace | len|channel | len|kind | len|record`,
    /// every `len` a u32 big-endian byte count.
    fn encode(&self, header: &[u8]) -> Option<Vec<u8>> {
        Some(
            AadBuilder::new(TOKEN_DOMAIN, header)?
                .field(self.workspace_id.as_bytes())?
                .field(self.channel_id.as_bytes())?
                .field(self.token_kind.as_bytes())?
                .field(self.record_id.as_bytes())?
                .finish(),
        )
    }
}

/// A workspace's data key: seals and opens that workspace's tokens.
///
/// Only made by [`Keyring::new_data_key`](crate::Keyring::new_data_key) and
/// [`Keyring::unwrap`](crate::Keyring::unwrap). No `Debug`, `Display` or `Clone`. The raw key
/// bytes live in a zeroizing buffer only while the ring key is built; ring's `LessSafeKey` holds
/// the expanded AES key schedule and cannot be zeroized (see the crate docs).
pub struct DataKey {
    version: u32,
    key: LessSafeKey,
}

impl DataKey {
    pub(crate) fn from_raw(version: u32, raw: &Zeroizing<[u8; KEY_LEN]>) -> Option<Self> {
        Some(Self {
            version,
            key: aead::key_from_bytes(raw)?,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Seals a token as `0x01 | data-key version (u32 BE) | nonce (12) | ciphertext | tag (16)`
    /// with a fresh random nonce.
    pub fn seal(&self, aad: &TokenAad<'_>, plaintext: &Plaintext) -> Result<Vec<u8>, CryptoError> {
        let header = aead::encode_header(self.version);
        let aad = aad.encode(&header).ok_or(CryptoError::Seal)?;
        aead::seal_blob(&self.key, &header, &aad, plaintext.expose())
    }

    #[cfg(test)]
    fn seal_with_nonce(
        &self,
        aad: &TokenAad<'_>,
        plaintext: &[u8],
        nonce: [u8; aead::NONCE_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let header = aead::encode_header(self.version);
        let aad = aad.encode(&header).ok_or(CryptoError::Seal)?;
        aead::seal_blob_with_nonce(&self.key, &header, nonce, &aad, plaintext)
    }

    /// Opens a blob made by [`DataKey::seal`] with the same `aad`. Any failure, including a
    /// blob sealed under another data-key version, is [`CryptoError::Open`].
    pub fn open(&self, aad: &TokenAad<'_>, blob: &[u8]) -> Result<Plaintext, CryptoError> {
        if sealed_data_key_version(blob) != Some(self.version) {
            return Err(CryptoError::Open);
        }
        let aad = aad.encode(&blob[..aead::HEADER_LEN]).ok_or(CryptoError::Open)?;
        aead::open_blob(&self.key, blob, &aad).map(Plaintext::from_zeroizing)
    }

    /// Data-key rotation: opens `blob` with `old` and seals the token again under `self`, with
    /// the same `aad`. The plaintext exists only inside this call.
    pub fn reseal_from(
        &self,
        old: &DataKey,
        aad: &TokenAad<'_>,
        blob: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let plaintext = old.open(aad, blob)?;
        self.seal(aad, &plaintext)
    }
}

/// The data-key version a sealed token blob was made with, or `None` if the blob is too short
/// or has an unknown format byte. Does not authenticate anything: use it to pick the key and to
/// report rotation progress, then [`DataKey::open`] decides.
pub fn sealed_data_key_version(blob: &[u8]) -> Option<u32> {
    aead::header_version(blob, MIN_BLOB_LEN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const AAD: TokenAad<'static> = TokenAad {
        workspace_id: "ws_1",
        channel_id: "ch_2",
        token_kind: "page_access",
        record_id: "rec_3",
    };

    fn fixture_key() -> DataKey {
        let raw: [u8; 32] = std::array::from_fn(|i| i as u8); // 00 01 .. 1f
        DataKey::from_raw(7, &Zeroizing::new(raw)).unwrap()
    }

    /// The token AAD spelled out byte by byte, independently of `AadBuilder`.
    #[test]
    fn token_aad_encoding_is_stable() {
        let header = aead::encode_header(7);
        let expected = [
            &[0, 0, 0, 15][..],
            b"scifer/token/v1",
            &[0x01, 0, 0, 0, 7],
            &[0, 0, 0, 4],
            b"ws_1",
            &[0, 0, 0, 4],
            b"ch_2",
            &[0, 0, 0, 11],
            b"page_access",
            &[0, 0, 0, 5],
            b"rec_3",
        ]
        .concat();
        assert_eq!(AAD.encode(&header).unwrap(), expected);
    }

    /// Pins the stored format: this blob was computed independently with Python's
    /// `cryptography` (AESGCM(key).encrypt(nonce, pt, aad), key 00..1f, nonce a0..ab, the AAD
    /// above), with the header and nonce prepended. If this test fails, stored tokens in
    /// every database would stop opening.
    #[test]
    fn sealed_token_format_fixture() {
        let nonce: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
        let blob = fixture_key().seal_with_nonce(&AAD, b"EAAB-token", nonce).unwrap();
        assert_eq!(
            hex::encode(&blob),
            "0100000007a0a1a2a3a4a5a6a7a8a9aaab\
             a3593d6f68bf6dd4070bbea2033194f6f01bcea7088fca7bfd90"
        );
        assert_eq!(fixture_key().open(&AAD, &blob).unwrap().expose(), b"EAAB-token");
    }
}
