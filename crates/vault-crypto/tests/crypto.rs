//! The public API as token-vault uses it: envelope round trips, rotation, tamper resistance,
//! AAD binding, keyring configuration errors and secret hygiene of error messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use scifer_vault_crypto::{
    CryptoError, DataKey, Keyring, KeyringError, Plaintext, TokenAad, WrappedKey, sealed_data_key_version,
    wrapped_kek_version,
};

const TOKEN: &str = "EAABsbCS1iHgBAKZCZBtoken-plaintext-0123456789";

const AAD: TokenAad<'static> = TokenAad {
    workspace_id: "ws_01J8ZK",
    channel_id: "ch_page_1234",
    token_kind: "page_access",
    record_id: "tok_01J8ZM",
};

fn token() -> Plaintext {
    Plaintext::from_string(TOKEN.to_owned())
}

fn key_b64() -> String {
    Keyring::generate_key_base64().unwrap()
}

/// A keyring with the given KEKs as `(version, base64)`.
fn keyring(keys: &[(u32, &str)], primary: Option<u32>) -> Keyring {
    let spec: Vec<String> = keys.iter().map(|(v, k)| format!("{v}:{k}")).collect();
    Keyring::parse(&spec.join(","), primary).unwrap()
}

fn single_keyring() -> Keyring {
    keyring(&[(1, &key_b64())], None)
}

fn data_key(workspace_id: &str) -> (Keyring, DataKey, WrappedKey) {
    let keyring = single_keyring();
    let (key, wrapped) = keyring.new_data_key(workspace_id, 1).unwrap();
    (keyring, key, wrapped)
}

fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

// ---- round trips -----------------------------------------------------------------------------

#[test]
fn seal_then_open_round_trips() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let blob = key.seal(&AAD, &token()).unwrap();
    assert_eq!(key.open(&AAD, &blob).unwrap().expose_str(), Some(TOKEN));
    // 5-byte header + 12-byte nonce + ciphertext (same length as plaintext) + 16-byte tag.
    assert_eq!(blob.len(), 5 + 12 + TOKEN.len() + 16);
    assert_eq!(sealed_data_key_version(&blob), Some(1));
    assert!(
        !blob
            .windows(8)
            .any(|w| TOKEN.as_bytes().windows(8).any(|t| t == w)),
        "the blob must not contain plaintext"
    );
}

#[test]
fn empty_and_binary_plaintexts_round_trip() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let binary: Vec<u8> = (0..=255).collect();
    for plaintext in [Vec::new(), binary] {
        let blob = key.seal(&AAD, &Plaintext::new(plaintext.clone())).unwrap();
        assert_eq!(key.open(&AAD, &blob).unwrap().expose(), &plaintext[..]);
    }
}

#[test]
fn wrap_then_unwrap_gives_the_same_data_key() {
    let keyring = single_keyring();
    let (key, wrapped) = keyring.new_data_key(AAD.workspace_id, 4).unwrap();
    assert_eq!(key.version(), 4);
    assert_eq!(wrapped.kek_version, 1);
    assert_eq!(wrapped.bytes.len(), 65);
    assert_eq!(wrapped_kek_version(&wrapped.bytes), Some(1));

    let unwrapped = keyring.unwrap(AAD.workspace_id, 4, &wrapped.bytes).unwrap();
    assert_eq!(unwrapped.version(), 4);
    // Same key material both ways round.
    let blob = key.seal(&AAD, &token()).unwrap();
    assert_eq!(unwrapped.open(&AAD, &blob).unwrap().expose_str(), Some(TOKEN));
    let blob = unwrapped.seal(&AAD, &token()).unwrap();
    assert_eq!(key.open(&AAD, &blob).unwrap().expose_str(), Some(TOKEN));
}

#[test]
fn new_data_keys_are_random() {
    let keyring = single_keyring();
    let (a, wrapped_a) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    let (b, wrapped_b) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    assert_ne!(wrapped_a.bytes, wrapped_b.bytes);
    let blob = a.seal(&AAD, &token()).unwrap();
    assert_eq!(b.open(&AAD, &blob).err(), Some(CryptoError::Open));
}

#[test]
fn two_seals_of_the_same_plaintext_differ() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let first = key.seal(&AAD, &token()).unwrap();
    let second = key.seal(&AAD, &token()).unwrap();
    assert_ne!(first, second);
    assert_ne!(first[5..17], second[5..17], "nonces must differ");
    assert_eq!(key.open(&AAD, &second).unwrap().expose_str(), Some(TOKEN));
}

#[test]
fn keys_and_nonces_do_not_repeat() {
    let keys: std::collections::HashSet<String> = (0..64).map(|_| key_b64()).collect();
    assert_eq!(keys.len(), 64);
    let (_, key, _) = data_key(AAD.workspace_id);
    let nonces: std::collections::HashSet<Vec<u8>> = (0..256)
        .map(|_| key.seal(&AAD, &token()).unwrap()[5..17].to_vec())
        .collect();
    assert_eq!(nonces.len(), 256);
}

// ---- rotation --------------------------------------------------------------------------------

#[test]
fn kek_rotation_rewrap_then_retire_the_old_kek() {
    let (old_b64, new_b64) = (key_b64(), key_b64());
    let ws = AAD.workspace_id;

    let before = keyring(&[(1, &old_b64)], None);
    let (key, stays_old) = before.new_data_key(ws, 1).unwrap();
    let to_rotate = before.new_data_key(ws, 2).unwrap().1;
    let blob = key.seal(&AAD, &token()).unwrap();

    // Step 1: add KEK 2 and promote it; everything made under KEK 1 still opens.
    let during = keyring(&[(1, &old_b64), (2, &new_b64)], Some(2));
    assert_eq!(during.primary_version(), 2);
    assert_eq!(during.versions(), vec![1, 2]);
    let reopened = during.unwrap(ws, 1, &stays_old.bytes).unwrap();
    assert_eq!(reopened.open(&AAD, &blob).unwrap().expose_str(), Some(TOKEN));

    // Step 2: the background job re-wraps; the report shows the new version.
    assert_eq!(wrapped_kek_version(&to_rotate.bytes), Some(1));
    let rotated = during.rewrap(ws, 2, &to_rotate.bytes).unwrap();
    assert_eq!(rotated.kek_version, 2);
    assert_eq!(wrapped_kek_version(&rotated.bytes), Some(2));
    let rewrapped_data_key = during.rewrap(ws, 1, &stays_old.bytes).unwrap();

    // Step 3: retire KEK 1. Re-wrapped keys unwrap (and are the same data key); a key that
    // was never re-wrapped fails with the one generic error, not UnknownKek.
    let after = keyring(&[(2, &new_b64)], None);
    assert!(after.unwrap(ws, 2, &rotated.bytes).is_ok());
    let same_key = after.unwrap(ws, 1, &rewrapped_data_key.bytes).unwrap();
    assert_eq!(same_key.open(&AAD, &blob).unwrap().expose_str(), Some(TOKEN));
    assert_eq!(
        after.unwrap(ws, 2, &to_rotate.bytes).err(),
        Some(CryptoError::Open)
    );
    assert_eq!(
        after.rewrap(ws, 2, &to_rotate.bytes).err(),
        Some(CryptoError::Open)
    );
}

#[test]
fn primary_defaults_to_highest_version_and_can_be_chosen() {
    let (a, b, c) = (key_b64(), key_b64(), key_b64());
    let spec = format!("3:{a}, 10:{b} ,7:{c}");
    let default = Keyring::parse(&spec, None).unwrap();
    assert_eq!(default.primary_version(), 10);
    assert_eq!(default.versions(), vec![3, 7, 10]);
    assert_eq!(default.new_data_key("ws", 1).unwrap().1.kek_version, 10);

    let chosen = Keyring::parse(&spec, Some(3)).unwrap();
    assert_eq!(chosen.primary_version(), 3);
    assert_eq!(chosen.new_data_key("ws", 1).unwrap().1.kek_version, 3);
}

#[test]
fn data_key_rotation_reseals_tokens() {
    let keyring = single_keyring();
    let (old, _) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    let (new, _) = keyring.new_data_key(AAD.workspace_id, 2).unwrap();
    let blob = old.seal(&AAD, &token()).unwrap();
    assert_eq!(sealed_data_key_version(&blob), Some(1));

    let moved = new.reseal_from(&old, &AAD, &blob).unwrap();
    assert_eq!(sealed_data_key_version(&moved), Some(2));
    assert_eq!(new.open(&AAD, &moved).unwrap().expose_str(), Some(TOKEN));
    assert_eq!(old.open(&AAD, &moved).err(), Some(CryptoError::Open));
    // Resealing needs the right AAD too.
    let other = TokenAad {
        record_id: "tok_other",
        ..AAD
    };
    assert_eq!(
        new.reseal_from(&old, &other, &blob).err(),
        Some(CryptoError::Open)
    );
}

// ---- tampering, truncation, malformed input --------------------------------------------------

#[test]
fn every_single_bit_flip_of_a_sealed_token_fails() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let blob = key.seal(&AAD, &token()).unwrap();
    assert!(key.open(&AAD, &blob).is_ok(), "the untouched blob must open");
    for bit in 0..blob.len() * 8 {
        let flipped = flip_bit(&blob, bit);
        assert_eq!(
            key.open(&AAD, &flipped).err(),
            Some(CryptoError::Open),
            "flipping bit {bit} (byte {}) went unnoticed",
            bit / 8
        );
    }
}

#[test]
fn every_single_bit_flip_of_a_wrapped_key_fails() {
    let keyring = single_keyring();
    let (_, wrapped) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    assert!(keyring.unwrap(AAD.workspace_id, 1, &wrapped.bytes).is_ok());
    for bit in 0..wrapped.bytes.len() * 8 {
        let flipped = flip_bit(&wrapped.bytes, bit);
        assert_eq!(
            keyring.unwrap(AAD.workspace_id, 1, &flipped).err(),
            Some(CryptoError::Open),
            "flipping bit {bit} (byte {}) went unnoticed",
            bit / 8
        );
        assert_eq!(
            keyring.rewrap(AAD.workspace_id, 1, &flipped).err(),
            Some(CryptoError::Open)
        );
    }
}

#[test]
fn truncated_extended_and_empty_sealed_tokens_fail() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let blob = key.seal(&AAD, &token()).unwrap();
    for len in 0..blob.len() {
        assert_eq!(
            key.open(&AAD, &blob[..len]).err(),
            Some(CryptoError::Open),
            "prefix of {len} bytes"
        );
    }
    let mut extended = blob.clone();
    extended.push(0);
    assert_eq!(key.open(&AAD, &extended).err(), Some(CryptoError::Open));
    assert_eq!(key.open(&AAD, &[]).err(), Some(CryptoError::Open));
    assert_eq!(sealed_data_key_version(&[]), None);
    assert_eq!(sealed_data_key_version(&blob[..32]), None);
    assert_eq!(sealed_data_key_version(&blob[..33]), Some(1));
}

#[test]
fn truncated_extended_and_empty_wrapped_keys_fail() {
    let keyring = single_keyring();
    let (_, wrapped) = keyring.new_data_key("ws", 1).unwrap();
    for len in 0..wrapped.bytes.len() {
        let prefix = &wrapped.bytes[..len];
        assert_eq!(keyring.unwrap("ws", 1, prefix).err(), Some(CryptoError::Open));
        assert_eq!(wrapped_kek_version(prefix), None, "prefix of {len} bytes");
    }
    let mut extended = wrapped.bytes.clone();
    extended.push(0);
    assert_eq!(keyring.unwrap("ws", 1, &extended).err(), Some(CryptoError::Open));
    assert_eq!(wrapped_kek_version(&extended), None);
}

#[test]
fn unknown_format_byte_fails_and_has_no_version() {
    let keyring = single_keyring();
    let (key, wrapped) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    let mut blob = key.seal(&AAD, &token()).unwrap();
    let mut wrapped = wrapped.bytes;
    blob[0] = 0x02;
    wrapped[0] = 0x02;
    assert_eq!(sealed_data_key_version(&blob), None);
    assert_eq!(wrapped_kek_version(&wrapped), None);
    assert_eq!(key.open(&AAD, &blob).err(), Some(CryptoError::Open));
    assert_eq!(
        keyring.unwrap(AAD.workspace_id, 1, &wrapped).err(),
        Some(CryptoError::Open)
    );
}

// ---- associated data binding -----------------------------------------------------------------

#[test]
fn a_token_moved_to_another_workspace_channel_kind_or_record_fails() {
    let (_, key, _) = data_key(AAD.workspace_id);
    let blob = key.seal(&AAD, &token()).unwrap();
    assert!(key.open(&AAD, &blob).is_ok());
    let moved = [
        TokenAad {
            workspace_id: "ws_other",
            ..AAD
        },
        TokenAad {
            channel_id: "ch_other",
            ..AAD
        },
        TokenAad {
            token_kind: "user_access",
            ..AAD
        },
        TokenAad {
            record_id: "tok_other",
            ..AAD
        },
        TokenAad { record_id: "", ..AAD },
    ];
    for aad in moved {
        assert_eq!(key.open(&aad, &blob).err(), Some(CryptoError::Open), "{aad:?}");
    }
}

#[test]
fn a_token_from_workspace_a_fails_under_workspace_b_data_key() {
    let keyring = single_keyring();
    let (key_a, _) = keyring.new_data_key("ws_a", 1).unwrap();
    let (key_b, _) = keyring.new_data_key("ws_b", 1).unwrap();
    let aad_a = TokenAad {
        workspace_id: "ws_a",
        ..AAD
    };
    let blob = key_a.seal(&aad_a, &token()).unwrap();
    assert!(key_a.open(&aad_a, &blob).is_ok());
    // Fails with B's key whether or not the caller also rewrites the workspace id.
    assert_eq!(key_b.open(&aad_a, &blob).err(), Some(CryptoError::Open));
    let aad_b = TokenAad {
        workspace_id: "ws_b",
        ..AAD
    };
    assert_eq!(key_b.open(&aad_b, &blob).err(), Some(CryptoError::Open));
}

#[test]
fn a_wrapped_key_is_bound_to_its_workspace_and_version() {
    let keyring = single_keyring();
    let (_, wrapped) = keyring.new_data_key("ws_a", 3).unwrap();
    assert!(keyring.unwrap("ws_a", 3, &wrapped.bytes).is_ok());
    for (ws, version) in [("ws_b", 3), ("ws_a", 2), ("ws_a", 4), ("", 3)] {
        assert_eq!(
            keyring.unwrap(ws, version, &wrapped.bytes).err(),
            Some(CryptoError::Open),
            "{ws} v{version}"
        );
    }
}

#[test]
fn a_wrapped_key_fails_under_another_keyring_with_the_same_version() {
    let ours = single_keyring();
    let theirs = single_keyring();
    let (_, wrapped) = ours.new_data_key("ws", 1).unwrap();
    assert!(ours.unwrap("ws", 1, &wrapped.bytes).is_ok());
    assert_eq!(
        theirs.unwrap("ws", 1, &wrapped.bytes).err(),
        Some(CryptoError::Open)
    );
}

#[test]
fn shifting_bytes_between_aad_fields_fails() {
    let (_, key, _) = data_key("ab");
    let sealed_as = TokenAad {
        workspace_id: "ab",
        channel_id: "ab",
        token_kind: "c",
        record_id: "r",
    };
    let blob = key.seal(&sealed_as, &token()).unwrap();
    assert!(key.open(&sealed_as, &blob).is_ok());
    let shifted = [
        // Same concatenation "ab" + "c", different split.
        TokenAad {
            channel_id: "a",
            token_kind: "bc",
            ..sealed_as
        },
        TokenAad {
            channel_id: "abc",
            token_kind: "",
            ..sealed_as
        },
        // Workspace/channel and kind/record boundaries.
        TokenAad {
            workspace_id: "a",
            channel_id: "bab",
            ..sealed_as
        },
        TokenAad {
            token_kind: "cr",
            record_id: "",
            ..sealed_as
        },
    ];
    for aad in shifted {
        assert_eq!(key.open(&aad, &blob).err(), Some(CryptoError::Open), "{aad:?}");
    }
}

#[test]
fn a_data_key_only_opens_blobs_of_its_own_version() {
    let keyring = single_keyring();
    let (v1, wrapped) = keyring.new_data_key("ws", 1).unwrap();
    let blob = v1.seal(&AAD, &token()).unwrap();
    // The same key material unwrapped under another version claim is refused at unwrap…
    assert_eq!(
        keyring.unwrap("ws", 2, &wrapped.bytes).err(),
        Some(CryptoError::Open)
    );
    // …and a blob whose header is edited to another version does not open either.
    let mut edited = blob.clone();
    edited[4] = 2;
    let (v2, _) = keyring.new_data_key("ws", 2).unwrap();
    assert_eq!(v2.open(&AAD, &edited).err(), Some(CryptoError::Open));
    assert_eq!(v1.open(&AAD, &edited).err(), Some(CryptoError::Open));
}

// ---- keyring configuration -------------------------------------------------------------------

/// Each bad spec must fail with the expected message and never echo the key text.
#[test]
fn keyring_parse_errors_are_clear_and_never_echo_keys() {
    let good = key_b64();
    let short = base64_of(&[7u8; 16]);
    let long = base64_of(&[7u8; 33]);
    // A 32-byte key with one character replaced by something outside the alphabet.
    let bad_b64 = format!("{}!", &good[..good.len() - 2]);
    let cases: Vec<(String, Option<u32>, &str)> = vec![
        (String::new(), None, "no KEKs configured"),
        ("  \n".into(), None, "no KEKs configured"),
        (
            format!("1:{bad_b64}"),
            None,
            "KEK version 1 is not valid standard",
        ),
        (
            format!("2:{short}"),
            None,
            "KEK version 2 is not 32 bytes (it decodes to 16 bytes)",
        ),
        (
            format!("2:{long}"),
            None,
            "KEK version 2 is not 32 bytes (it decodes to 33 bytes)",
        ),
        (
            format!("1:{good},1:{good}"),
            None,
            "KEK version 1 is configured more than once",
        ),
        (format!("1:{good}"), Some(3), "primary KEK version 3 not present"),
        (format!("1:{good},,2:{good}"), None, "KEK entry 2 is empty"),
        (
            format!("1:{good},{good}"),
            None,
            "KEK entry 2 is not of the form `version:base64key`",
        ),
        (
            format!("v1:{good}"),
            None,
            "KEK entry 1 has a version that is not",
        ),
        (
            format!("-1:{good}"),
            None,
            "KEK entry 1 has a version that is not",
        ),
        (
            format!("4294967296:{good}"),
            None,
            "KEK entry 1 has a version that is not",
        ),
    ];
    for (spec, primary, expected) in cases {
        let err = Keyring::parse(&spec, primary).expect_err(&format!("{expected}: accepted"));
        let (display, debug) = (err.to_string(), format!("{err:?}"));
        assert!(display.starts_with(expected), "{display:?} !~ {expected:?}");
        for key_text in [&good, &short, &long, &bad_b64] {
            assert!(!display.contains(key_text.as_str()), "{display}");
            assert!(!debug.contains(key_text.as_str()), "{debug}");
        }
    }
}

#[test]
fn keyring_parse_error_kinds() {
    let good = key_b64();
    assert!(matches!(
        Keyring::parse(&format!("5:{good},5:{}", key_b64()), None),
        Err(KeyringError::DuplicateVersion { version: 5 })
    ));
    assert!(matches!(
        Keyring::parse(&format!("5:{good}"), Some(6)),
        Err(KeyringError::PrimaryMissing { version: 6 })
    ));
    assert!(matches!(
        Keyring::parse(&format!("5:{good}="), None),
        Err(KeyringError::BadBase64 { version: 5 })
    ));
}

#[test]
fn keyring_reads_a_mounted_secret_file() {
    let (k1, k2) = (key_b64(), key_b64());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keks");
    std::fs::write(&path, format!("\n 1:{k1},2:{k2}\n")).unwrap();

    let from_file = Keyring::from_file(&path, Some(1)).unwrap();
    assert_eq!(from_file.versions(), vec![1, 2]);
    assert_eq!(from_file.primary_version(), 1);
    // Same keys as parsing the string directly.
    let (_, wrapped) = from_file.new_data_key("ws", 1).unwrap();
    let parsed = keyring(&[(1, &k1)], None);
    assert!(parsed.unwrap("ws", 1, &wrapped.bytes).is_ok());

    let missing = dir.path().join("missing");
    let err = Keyring::from_file(&missing, None).unwrap_err();
    assert!(matches!(err, KeyringError::Read { .. }));
    assert!(err.to_string().contains("missing"), "{err}");

    std::fs::write(&path, [0xff, 0xfe]).unwrap();
    assert!(matches!(
        Keyring::from_file(&path, None),
        Err(KeyringError::NotUtf8 { .. })
    ));
}

#[test]
fn generated_keys_are_32_byte_base64_and_usable() {
    let key = key_b64();
    assert_eq!(key.len(), 44);
    assert!(key.ends_with('='));
    let keyring = keyring(&[(9, &key)], None);
    assert_eq!(keyring.versions(), vec![9]);
}

// ---- nothing secret in formatted output ------------------------------------------------------

#[test]
fn formatted_errors_and_debug_output_never_contain_secrets() {
    let kek = key_b64();
    let keyring = keyring(&[(1, &kek)], None);
    let (key, wrapped) = keyring.new_data_key(AAD.workspace_id, 1).unwrap();
    let blob = key.seal(&AAD, &token()).unwrap();
    let other = TokenAad {
        channel_id: "ch_other",
        ..AAD
    };

    let mut outputs = vec![format!("{keyring:?}"), format!("{wrapped:?}")];
    let errors = [
        key.open(&other, &blob).err().unwrap(),
        key.open(&AAD, &flip_bit(&blob, 200)).err().unwrap(),
        key.open(&AAD, &blob[..10]).err().unwrap(),
        keyring.unwrap("ws_other", 1, &wrapped.bytes).err().unwrap(),
    ];
    for err in errors {
        assert_eq!(err, CryptoError::Open);
        outputs.push(err.to_string());
        outputs.push(format!("{err:?}"));
    }
    assert_eq!(outputs[0], "Keyring { versions: [1], primary: 1, .. }");
    for out in &outputs {
        assert!(!out.contains(TOKEN), "{out}");
        assert!(!out.contains(&kek), "{out}");
    }
    assert_eq!(
        CryptoError::Open.to_string(),
        "the sealed value could not be opened"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
