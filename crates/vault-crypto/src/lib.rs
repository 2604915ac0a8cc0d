//! Envelope encryption for channel access tokens (used by token-vault). Pure library: the only
//! I/O is [`Keyring::from_file`]. All cryptography is ring's AES-256-GCM and `SystemRandom`.
//!
//! # Key hierarchy
//!
//! - **KEK** (key-encryption key): 256-bit, versioned, from configuration only (an env string or
//!   a mounted file, see [`Keyring::parse`]), never in the database. One version is *primary*.
//! - **Data key**: 256-bit, random, one per workspace and data-key version. Stored in the
//!   database only wrapped under a KEK ([`WrappedKey`]); made by [`Keyring::new_data_key`].
//! - **Token**: sealed under its workspace's [`DataKey`] with associated data ([`TokenAad`])
//!   binding workspace, channel, token kind and record id, so a ciphertext copied to another
//!   row, channel or workspace does not open.
//!
//! # Wrapping data keys: AES-256-GCM, not AES key wrap
//!
//! ring has no AES key wrap (RFC 3394/5649). Data keys are therefore wrapped with AES-256-GCM
//! under the KEK, with a random 96-bit nonce and associated data binding
//! `"scifer/data-key/v1"`, the workspace id and the data-key version. That is authenticated
//! wrapping (a 128-bit tag, versus RFC 3394's 64-bit integrity check) with ring alone. The usual
//! limit for random GCM nonces (stay well below 2^32 encryptions per key) is irrelevant at a
//! handful of wraps per workspace; a data key seals one blob per token write, also far below it.
//!
//! # Blob formats
//!
//! Both start with a 5-byte header, a format byte and a key version, which is authenticated as
//! part of the associated data. All integers are big-endian.
//!
//! | blob | layout | length |
//! |---|---|---|
//! | sealed token | `0x01` · data-key version u32 · nonce 12 · ciphertext · tag 16 | 33 + token |
//! | wrapped data key | `0x01` · KEK version u32 · nonce 12 · ciphertext 32 · tag 16 | 65 |
//!
//! Associated data, where `lp(x)` is a u32 byte length followed by the bytes of `x`:
//!
//! - token: `lp("scifer/token/v1") · header · lp(workspace) · lp(channel) · lp(kind) · lp(record)`
//! - data key: `lp("scifer/data-key/v1") · header · lp(workspace) · data-key version u32`
//!
//! Length prefixes make the encoding unambiguous (channel `"ab"` + kind `"c"` is not channel
//! `"a"` + kind `"bc"`), and the distinct domain strings keep the two kinds of blob apart.
//!
//! # Rotation without downtime
//!
//! [`wrapped_kek_version`] and [`sealed_data_key_version`] read a blob's version without any
//! key, so a background job can find what is not yet on the current version and report progress.
//!
//! - **KEK**: add the new version to the configured keyring and make it primary; new wraps use
//!   it, old wraps still open. The job calls [`Keyring::rewrap`] on every wrapped data key whose
//!   [`wrapped_kek_version`] is not the primary. Once none are left, remove the old KEK.
//! - **Data key**: make a new data-key version with [`Keyring::new_data_key`] and seal new
//!   tokens under it; the job moves each token with [`DataKey::reseal_from`], picking the old key
//!   by [`sealed_data_key_version`]. Once none are left, delete the old wrapped data key.
//!
//! # Errors
//!
//! Every failure to open or unwrap is [`CryptoError::Open`], whatever the cause (wrong key,
//! tampering, wrong associated data, unknown or retired version, bad format, truncation).
//! [`KeyringError`] messages name versions and entry positions, never key material.
//!
//! # Secrets in memory
//!
//! Plaintext tokens live only in [`Plaintext`] (zeroized on drop; no `Debug`, `Display` or
//! `Clone`, guarded at compile time for the first two). Raw key bytes (parsed KEKs, fresh and
//! unwrapped data keys) live only in `Zeroizing` buffers, dropped as soon as the ring key is
//! built. ring's `LessSafeKey` itself (the expanded AES key schedule inside [`Keyring`] and
//! [`DataKey`]) cannot be zeroized: that residue lasts as long as the key object does, so keep
//! data keys short-lived (unwrap per request or cache briefly). [`DataKey`] has no `Debug`;
//! [`Keyring`]'s `Debug` shows versions only.

mod aead;
mod data_key;
mod error;
mod keyring;
mod plaintext;

pub use data_key::{DataKey, TokenAad, sealed_data_key_version};
pub use error::{CryptoError, KeyringError};
pub use keyring::{Keyring, WrappedKey, wrapped_kek_version};
pub use plaintext::Plaintext;

/// Compile-time guard: secret-holding types must not implement `Debug` or `Display`.
///
/// If `T` implemented either, `<T as NotDebugOrDisplay<_>>::check` would match two impls and
/// the inference of `_` would be ambiguous, failing the build (the trick behind
/// `static_assertions::assert_not_impl_any!`).
mod no_debug_guard {
    trait NotDebugOrDisplay<Marker> {
        fn check() {}
    }
    impl<T: ?Sized> NotDebugOrDisplay<()> for T {}
    struct IfDebug;
    impl<T: ?Sized + std::fmt::Debug> NotDebugOrDisplay<IfDebug> for T {}
    struct IfDisplay;
    impl<T: ?Sized + std::fmt::Display> NotDebugOrDisplay<IfDisplay> for T {}

    const _: fn() = || {
        <super::Plaintext as NotDebugOrDisplay<_>>::check();
        <super::DataKey as NotDebugOrDisplay<_>>::check();
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// token-vault shares these across tokio tasks.
    #[test]
    fn key_types_are_send_and_sync() {
        assert_send_sync::<Keyring>();
        assert_send_sync::<DataKey>();
        assert_send_sync::<Plaintext>();
    }
}
