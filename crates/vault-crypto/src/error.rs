//! Error types. Neither enum ever carries key material or plaintext.

use std::path::PathBuf;

/// Failure of a seal, open, wrap or unwrap.
///
/// Every failure to *open* (a sealed token or a wrapped data key) is the one variant
/// [`CryptoError::Open`]: wrong key, tampered bytes, wrong associated data, unknown key version
/// and malformed input are deliberately indistinguishable, so the error is no oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The value could not be opened. Intentionally says nothing about why.
    #[error("the sealed value could not be opened")]
    Open,
    /// Sealing or wrapping failed (the system RNG failed, or an input was over 4 GiB).
    #[error("encryption failed")]
    Seal,
    /// The keyring has no KEK with this version, on the wrapping side only.
    /// Unwrapping with an unknown KEK version is [`CryptoError::Open`].
    #[error("no key-encryption key with version {0}")]
    UnknownKek(u32),
}

/// A KEK specification that cannot be used. Messages name versions and entry positions
/// (1-based), never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("no KEKs configured")]
    Empty,
    #[error("KEK entry {position} is empty (stray comma?)")]
    EmptyEntry { position: usize },
    #[error("KEK entry {position} is not of the form `version:base64key`")]
    MalformedEntry { position: usize },
    #[error("KEK entry {position} has a version that is not an unsigned 32-bit integer")]
    BadVersion { position: usize },
    #[error("KEK version {version} is configured more than once")]
    DuplicateVersion { version: u32 },
    #[error("KEK version {version} is not valid standard (padded) base64")]
    BadBase64 { version: u32 },
    #[error("KEK version {version} is not 32 bytes (it decodes to {len} bytes)")]
    WrongLength { version: u32, len: usize },
    #[error("primary KEK version {version} not present")]
    PrimaryMissing { version: u32 },
    #[error("cannot read KEK file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("KEK file {} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
}
