use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::LessSafeKey;
use zeroize::Zeroizing;

use crate::aead::{self, AadBuilder, HEADER_LEN, KEY_LEN, MIN_BLOB_LEN};
use crate::{CryptoError, DataKey, KeyringError};

/// Domain string at the start of every wrapped data key's associated data.
const DATA_KEY_DOMAIN: &str = "scifer/data-key/v1";

/// Exact length of a wrapped data key: header, nonce, 32-byte key, tag.
const WRAPPED_LEN: usize = MIN_BLOB_LEN + KEY_LEN;

/// The versioned key-encryption keys (KEKs) from configuration, and which one wraps new keys.
///
/// `Debug` prints versions only. Share it behind an `Arc`; it is `Send + Sync`.
pub struct Keyring {
    keks: BTreeMap<u32, LessSafeKey>,
    primary: u32,
}

/// A data key wrapped under a KEK, as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KEK version that wrapped it (also in `bytes[1..5]`).
    pub kek_version: u32,
    /// The whole blob: `0x01 | kek version (u32 BE) | nonce (12) | wrapped key (32) | tag (16)`.
    pub bytes: Vec<u8>,
}

/// The KEK version a wrapped data key was made with, or `None` if the blob is malformed.
/// Does not authenticate anything: for rotation reports (`!= Some(keyring.primary_version())`
/// means the key still needs [`Keyring::rewrap`]).
pub fn wrapped_kek_version(wrapped: &[u8]) -> Option<u32> {
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    aead::header_version(wrapped, WRAPPED_LEN)
}

/// `len|"scifer/data-key/v1" | header(5) | len|workspace | data-key version (u32 BE)`.
fn data_key_aad(header: &[u8], workspace_id: &str, data_key_version: u32) -> Option<Vec<u8>> {
    Some(
        AadBuilder::new(DATA_KEY_DOMAIN, header)?
            .field(workspace_id.as_bytes())?
            .u32(data_key_version)
            .finish(),
    )
}

impl Keyring {
    /// Parses `version:base64key[,version:base64key...]` (32-byte keys, standard padded base64;
    /// whitespace around entries is ignored). `primary` defaults to the highest version.
    ///
    /// ```
    /// # use scifer_vault_crypto::Keyring;
    /// let k1 = Keyring::generate_key_base64().unwrap();
    /// let k2 = Keyring::generate_key_base64().unwrap();
    /// let keyring = Keyring::parse(&format!("1:{k1}, 2:{k2}"), None).unwrap();
    /// assert_eq!(keyring.primary_version(), 2);
    /// ```
    pub fn parse(spec: &str, primary: Option<u32>) -> Result<Self, KeyringError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keks = BTreeMap::new();
        for (index, entry) in spec.split(',').enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(KeyringError::EmptyEntry { position });
            }
            let (version, key_b64) = entry
                .split_once(':')
                .ok_or(KeyringError::MalformedEntry { position })?;
            let version: u32 = version
                .trim()
                .parse()
                .map_err(|_| KeyringError::BadVersion { position })?;
            if keks.contains_key(&version) {
                return Err(KeyringError::DuplicateVersion { version });
            }
            // The decode error is dropped on purpose: it names the offending byte.
            let decoded = Zeroizing::new(
                STANDARD
                    .decode(key_b64.trim())
                    .map_err(|_| KeyringError::BadBase64 { version })?,
            );
            let len = decoded.len();
            if len != KEY_LEN {
                return Err(KeyringError::WrongLength { version, len });
            }
            let mut raw = Zeroizing::new([0u8; KEY_LEN]);
            raw.copy_from_slice(&decoded);
            let key = aead::key_from_bytes(&raw).ok_or(KeyringError::WrongLength { version, len })?;
            // `decoded` and `raw` are zeroized here, at the end of the iteration.
            keks.insert(version, key);
        }
        let primary = match primary {
            Some(version) if keks.contains_key(&version) => version,
            Some(version) => return Err(KeyringError::PrimaryMissing { version }),
            None => *keks.keys().next_back().ok_or(KeyringError::Empty)?,
        };
        Ok(Self { keks, primary })
    }

    /// Reads the [`Keyring::parse`] format from a file (surrounding whitespace trimmed), e.g. a
    /// Kubernetes secret mounted as a file.
    pub fn from_file(path: &Path, primary: Option<u32>) -> Result<Self, KeyringError> {
        // `fs::read` sizes its buffer from the file's metadata, so the contents are not
        // reallocated (and left behind) while reading.
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyringError::Read {
            path: path.to_owned(),
            source,
        })?);
        let spec = std::str::from_utf8(&bytes).map_err(|_| KeyringError::NotUtf8 {
            path: path.to_owned(),
        })?;
        Self::parse(spec, primary)
    }

    /// The KEK version that wraps new and re-wrapped data keys.
    pub fn primary_version(&self) -> u32 {
        self.primary
    }

    /// All configured KEK versions, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keks.keys().copied().collect()
    }

    /// A fresh random data key for a workspace, and the same key wrapped under the primary KEK.
    /// The wrap is bound to `workspace_id` and `data_key_version`; pass the same values to
    /// [`Keyring::unwrap`].
    pub fn new_data_key(
        &self,
        workspace_id: &str,
        data_key_version: u32,
    ) -> Result<(DataKey, WrappedKey), CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        aead::fill_random(&mut raw[..])?;
        let wrapped = self.wrap_raw(workspace_id, data_key_version, &raw)?;
        let key = DataKey::from_raw(data_key_version, &raw).ok_or(CryptoError::Seal)?;
        Ok((key, wrapped))
    }

    /// Unwraps a data key stored as [`WrappedKey::bytes`], using whichever configured KEK
    /// version the blob names. Any failure, including an unknown or retired KEK version or the
    /// wrong workspace or data-key version, is [`CryptoError::Open`].
    pub fn unwrap(
        &self,
        workspace_id: &str,
        data_key_version: u32,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        let raw = self.unwrap_raw(workspace_id, data_key_version, wrapped)?;
        DataKey::from_raw(data_key_version, &raw).ok_or(CryptoError::Open)
    }

    /// KEK rotation: unwraps with whichever KEK the blob names and wraps the same data key again
    /// under the primary KEK (with a fresh nonce, even if it was already on the primary). Tokens
    /// sealed under the data key are unaffected.
    pub fn rewrap(
        &self,
        workspace_id: &str,
        data_key_version: u32,
        wrapped: &[u8],
    ) -> Result<WrappedKey, CryptoError> {
        let raw = self.unwrap_raw(workspace_id, data_key_version, wrapped)?;
        self.wrap_raw(workspace_id, data_key_version, &raw)
    }

    /// A new random 32-byte KEK in standard base64, for an operator `keygen` command.
    /// Fails only if the operating system's RNG fails.
    pub fn generate_key_base64() -> Result<String, CryptoError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        aead::fill_random(&mut raw[..])?;
        Ok(STANDARD.encode(&raw[..]))
    }

    fn wrap_raw(
        &self,
        workspace_id: &str,
        data_key_version: u32,
        raw: &[u8; KEY_LEN],
    ) -> Result<WrappedKey, CryptoError> {
        let kek = self
            .keks
            .get(&self.primary)
            .ok_or(CryptoError::UnknownKek(self.primary))?;
        let header = aead::encode_header(self.primary);
        let aad = data_key_aad(&header, workspace_id, data_key_version).ok_or(CryptoError::Seal)?;
        Ok(WrappedKey {
            kek_version: self.primary,
            bytes: aead::seal_blob(kek, &header, &aad, raw)?,
        })
    }

    fn unwrap_raw(
        &self,
        workspace_id: &str,
        data_key_version: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
        let kek = wrapped_kek_version(wrapped)
            .and_then(|version| self.keks.get(&version))
            .ok_or(CryptoError::Open)?;
        let aad =
            data_key_aad(&wrapped[..HEADER_LEN], workspace_id, data_key_version).ok_or(CryptoError::Open)?;
        let opened = aead::open_blob(kek, wrapped, &aad)?;
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        if opened.len() != KEY_LEN {
            return Err(CryptoError::Open);
        }
        raw.copy_from_slice(&opened);
        Ok(raw)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.versions())
            .field("primary", &self.primary)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The wrapped-key AAD spelled out byte by byte, independently of `AadBuilder`.
    #[test]
    fn data_key_aad_encoding_is_stable() {
        let expected = [
            &[0, 0, 0, 18][..],
            b"scifer/data-key/v1",
            &[0x01, 0, 0, 0, 3],
            &[0, 0, 0, 4],
            b"ws_1",
            &[0, 0, 0, 7],
        ]
        .concat();
        let aad = data_key_aad(&aead::encode_header(3), "ws_1", 7).unwrap();
        assert_eq!(aad, expected);
    }

    /// Pins the wrapped-key format: computed independently with Python's `cryptography`
    /// (AESGCM(kek).encrypt(nonce, data_key, aad), KEK 40..5f as version 3, nonce b0..bb,
    /// data key 00..1f as version 7 of "ws_1"), header and nonce prepended.
    #[test]
    fn wrapped_key_format_fixture() {
        let kek: Vec<u8> = (0x40..0x60).collect();
        let keyring = Keyring::parse(&format!("3:{}", STANDARD.encode(&kek)), None).unwrap();
        let blob = hex::decode(
            "0100000003b0b1b2b3b4b5b6b7b8b9babb\
             03018286c54fed9e33e72df3e1fb42c4ae19963b5000c088ebdf7a2095adec8f\
             ba6b0c507a3cfe24b5fbb6606dac65ec",
        )
        .unwrap();
        assert_eq!(wrapped_kek_version(&blob), Some(3));
        let raw = keyring.unwrap_raw("ws_1", 7, &blob).unwrap();
        let expected: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(*raw, expected);
        // And the crate's own wrap of that key has the same layout and length.
        let ours = keyring.wrap_raw("ws_1", 7, &expected).unwrap();
        assert_eq!(ours.bytes.len(), blob.len());
        assert_eq!(ours.bytes[..HEADER_LEN], blob[..HEADER_LEN]);
        assert_eq!(*keyring.unwrap_raw("ws_1", 7, &ours.bytes).unwrap(), expected);
    }
}
