//! The one AEAD construction both blob kinds share: `format | version | nonce | ciphertext+tag`
//! under AES-256-GCM (ring), with the 5-byte header inside the associated data.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

/// The only blob format so far. A future format gets a new byte; old blobs stay readable.
pub(crate) const FORMAT_V1: u8 = 0x01;
pub(crate) const HEADER_LEN: usize = 1 + 4;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const KEY_LEN: usize = 32;
/// Smallest well-formed blob: header, nonce and tag around an empty ciphertext.
pub(crate) const MIN_BLOB_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

pub(crate) type Header = [u8; HEADER_LEN];

pub(crate) fn encode_header(version: u32) -> Header {
    let v = version.to_be_bytes();
    [FORMAT_V1, v[0], v[1], v[2], v[3]]
}

/// The key version in a blob's header, if the blob is at least `min_len` long and has a known
/// format byte. Says nothing about whether the blob would open.
pub(crate) fn header_version(blob: &[u8], min_len: usize) -> Option<u32> {
    if blob.len() < min_len.max(HEADER_LEN) || blob[0] != FORMAT_V1 {
        return None;
    }
    Some(u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
}

/// Builds associated data: `u32 BE length | domain`, then the blob header, then each field
/// length-prefixed the same way, so no two different field lists encode to the same bytes.
pub(crate) struct AadBuilder(Vec<u8>);

impl AadBuilder {
    pub(crate) fn new(domain: &str, header: &[u8]) -> Option<Self> {
        let mut b = Self(Vec::with_capacity(128));
        b.push_field(domain.as_bytes())?;
        b.0.extend_from_slice(header);
        Some(b)
    }

    /// `None` if the field is longer than `u32::MAX` bytes.
    pub(crate) fn field(mut self, bytes: &[u8]) -> Option<Self> {
        self.push_field(bytes)?;
        Some(self)
    }

    pub(crate) fn u32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }

    fn push_field(&mut self, bytes: &[u8]) -> Option<()> {
        let len = u32::try_from(bytes.len()).ok()?;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        Some(())
    }
}

/// Builds a ring key from raw bytes. The caller keeps the raw bytes in a zeroizing buffer and
/// drops it as soon as this returns: ring's `LessSafeKey` (the expanded AES key schedule) cannot
/// be zeroized, which is the one residue of key material this crate cannot wipe.
pub(crate) fn key_from_bytes(raw: &[u8; KEY_LEN]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, raw).ok().map(LessSafeKey::new)
}

pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(out).map_err(|_| CryptoError::Seal)
}

/// Seals `plaintext` with a fresh random 96-bit nonce.
pub(crate) fn seal_blob(
    key: &LessSafeKey,
    header: &Header,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    seal_blob_with_nonce(key, header, nonce, aad, plaintext)
}

/// `header | nonce | ciphertext | tag`. Split from [`seal_blob`] only so that known-answer
/// tests can fix the nonce; production code always goes through `seal_blob`.
pub(crate) fn seal_blob_with_nonce(
    key: &LessSafeKey,
    header: &Header,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // Sized up front so the plaintext copy is never reallocated (which would leave an
    // unzeroized copy behind); it is encrypted in place right after.
    let mut blob = Vec::with_capacity(MIN_BLOB_LEN + plaintext.len());
    blob.extend_from_slice(header);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let sealed = key.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut blob[HEADER_LEN + NONCE_LEN..],
    );
    match sealed {
        Ok(tag) => {
            blob.extend_from_slice(tag.as_ref());
            Ok(blob)
        }
        Err(_) => {
            blob.zeroize();
            Err(CryptoError::Seal)
        }
    }
}

/// Opens a blob made by [`seal_blob`]. The caller has already checked the header and built
/// `aad` from it. Every failure is [`CryptoError::Open`].
pub(crate) fn open_blob(
    key: &LessSafeKey,
    blob: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < MIN_BLOB_LEN {
        return Err(CryptoError::Open);
    }
    let (nonce, sealed) = blob[HEADER_LEN..].split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf[..])
        .map_err(|_| CryptoError::Open)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Known-answer vectors for AES-256-GCM with a 96-bit IV, from D. McGrew and J. Viega,
    /// "The Galois/Counter Mode of Operation (GCM)", revised 2005, Appendix B, Test Cases 13–16
    /// (the 256-bit-key cases; 17 and 18 use IV lengths other than 96 bits, which ring does not
    /// accept). Also in NIST's GCM validation material. Each case is (K, P, A, IV, C, T).
    const MCGREW_VIEGA_256: [(&str, &str, &str, &str, &str, &str); 4] = [
        // Test Case 13: empty plaintext, no AAD.
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "",
            "",
            "000000000000000000000000",
            "",
            "530f8afbc74536b9a963b4f1c4cb738b",
        ),
        // Test Case 14: one zero block, no AAD.
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "00000000000000000000000000000000",
            "",
            "000000000000000000000000",
            "cea7403d4d606b6e074ec5d3baf39d18",
            "d0d1c8a799996bf0265b98b5d48ab919",
        ),
        // Test Case 15: four blocks, no AAD.
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            "",
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c",
        ),
        // Test Case 16: 60-byte plaintext (partial last block), 20-byte AAD.
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Runs each vector through the same seal/open code the crate uses, so this checks both
    /// the primitive and our blob layout (header, nonce, then ciphertext followed by tag).
    #[test]
    fn aes_256_gcm_known_answers_mcgrew_viega_13_to_16() {
        let header = encode_header(0x0102_0304);
        for (case, (k, p, a, iv, c, t)) in (13..).zip(MCGREW_VIEGA_256) {
            let key = key_from_bytes(&h(k).try_into().unwrap()).unwrap();
            let nonce: [u8; NONCE_LEN] = h(iv).try_into().unwrap();
            let blob = seal_blob_with_nonce(&key, &header, nonce, &h(a), &h(p)).unwrap();

            let expected = [&header[..], &nonce, &h(c), &h(t)].concat();
            assert_eq!(hex::encode(&blob), hex::encode(&expected), "test case {case}");

            let opened = open_blob(&key, &blob, &h(a)).unwrap();
            assert_eq!(&opened[..], &h(p)[..], "test case {case}");

            // The published tag is what authenticates: changing its last bit must fail.
            let mut bad = blob.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(
                open_blob(&key, &bad, &h(a)),
                Err(CryptoError::Open),
                "case {case}"
            );
        }
    }

    #[test]
    fn header_version_reads_only_known_formats() {
        let blob = [&encode_header(0xdead_beef)[..], &[0u8; 28]].concat();
        assert_eq!(header_version(&blob, MIN_BLOB_LEN), Some(0xdead_beef));
        assert_eq!(header_version(&blob[..MIN_BLOB_LEN - 1], MIN_BLOB_LEN), None);
        let mut other_format = blob.clone();
        other_format[0] = 0x02;
        assert_eq!(header_version(&other_format, MIN_BLOB_LEN), None);
        assert_eq!(header_version(&[], 0), None);
    }

    #[test]
    fn aad_fields_are_length_prefixed() {
        let aad = AadBuilder::new("d", &[9, 9])
            .and_then(|b| b.field(b"ab"))
            .and_then(|b| b.field(b""))
            .map(|b| b.u32(7).finish())
            .unwrap();
        assert_eq!(
            aad,
            [
                0, 0, 0, 1, b'd', 9, 9, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 7
            ]
        );
    }
}
