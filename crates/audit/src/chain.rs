//! The hash chain, without I/O. Each workspace's records form one chain:
//!
//! ```text
//! hash(n) = SHA-256( hash(n-1) || canonical_bytes(record n) ),   hash(0) = 32 zero bytes
//! ```
//!
//! [`canonical_bytes`] is this crate's own encoding, not protobuf's or JSON's (neither promises
//! byte-stable output): a version tag, then every field in a fixed order, strings as an 8-byte
//! big-endian length followed by their UTF-8 bytes, integers (sequence, time in Unix ms) as 8-byte
//! big-endian two's complement. Length prefixes make it unambiguous (no two different records
//! encode alike, whatever their strings contain). The sequence and workspace are hashed too, so a
//! record cannot be moved to another position or another workspace's chain without breaking it.
//!
//! What the chain proves: any change to a stored record, a deleted record in the middle, a
//! reordering, or a record re-hashed after a change (its successor no longer chains from it).
//! What it cannot prove alone: that nobody truncated the newest records or rewrote the whole tail
//! consistently. The store keeps the chain's head beside the records (see `store`), which catches a
//! careless truncation; anchoring head hashes outside the database would catch a careful one.

use ring::digest;

use crate::entry::AuditEntry;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the first record of every workspace chains from.
pub const GENESIS: Hash = [0; 32];

/// Identifies the encoding; a different layout would use a different tag.
const ENCODING_TAG: &[u8] = b"scifer.audit.record.v1";

/// One record of a chain: the hashed content (fields as stored) and its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub workspace_id: String,
    /// 1, 2, 3, ... within the workspace.
    pub sequence: i64,
    pub event_id: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub at_ms: i64,
    pub trace_id: String,
    pub outcome: String,
    pub detail: String,
    pub service: String,
    /// The hash of the record before this one ([`GENESIS`] for sequence 1).
    pub prev_hash: Hash,
    /// `SHA-256(prev_hash || canonical_bytes(self))`.
    pub hash: Hash,
}

/// The deterministic encoding of a record's content (everything but `prev_hash` and `hash`).
pub fn canonical_bytes(r: &Record) -> Vec<u8> {
    let strings = [
        &r.workspace_id,
        &r.event_id,
        &r.actor_kind,
        &r.actor_id,
        &r.action,
        &r.target_kind,
        &r.target_id,
        &r.trace_id,
        &r.outcome,
        &r.detail,
        &r.service,
    ];
    let len = ENCODING_TAG.len() + strings.iter().map(|s| s.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len + 8 * (strings.len() + 3));
    put_bytes(&mut out, ENCODING_TAG);
    put_bytes(&mut out, r.workspace_id.as_bytes());
    out.extend_from_slice(&r.sequence.to_be_bytes());
    put_bytes(&mut out, r.event_id.as_bytes());
    put_bytes(&mut out, r.actor_kind.as_bytes());
    put_bytes(&mut out, r.actor_id.as_bytes());
    put_bytes(&mut out, r.action.as_bytes());
    put_bytes(&mut out, r.target_kind.as_bytes());
    put_bytes(&mut out, r.target_id.as_bytes());
    out.extend_from_slice(&r.at_ms.to_be_bytes());
    put_bytes(&mut out, r.trace_id.as_bytes());
    put_bytes(&mut out, r.outcome.as_bytes());
    put_bytes(&mut out, r.detail.as_bytes());
    put_bytes(&mut out, r.service.as_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // usize is at most 64 bits on every target Rust supports.
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// `SHA-256(prev || canonical_bytes(record))`; the record's own `prev_hash` and `hash` are ignored.
pub fn compute_hash(prev: &Hash, record: &Record) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(&canonical_bytes(record));
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The end of a chain: the last sequence and its hash (0 and [`GENESIS`] when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub sequence: i64,
    pub hash: Hash,
}

impl Head {
    pub const EMPTY: Head = Head {
        sequence: 0,
        hash: GENESIS,
    };

    /// Chains `entry` after this head, and moves the head to it.
    pub fn append(&mut self, entry: &AuditEntry) -> Record {
        let mut record = Record {
            workspace_id: entry.workspace_id().to_string(),
            sequence: self.sequence + 1,
            event_id: entry.event_id().to_string(),
            actor_kind: entry.actor().kind.as_str().to_string(),
            actor_id: entry.actor().id.clone(),
            action: entry.action().to_string(),
            target_kind: entry.target().kind.clone(),
            target_id: entry.target().id.clone(),
            at_ms: entry.at_ms(),
            trace_id: entry.trace_id().to_string(),
            outcome: entry.outcome().as_str().to_string(),
            detail: entry.detail().to_string(),
            service: entry.service().to_string(),
            prev_hash: self.hash,
            hash: GENESIS,
        };
        record.hash = compute_hash(&self.hash, &record);
        *self = Head {
            sequence: record.sequence,
            hash: record.hash,
        };
        record
    }
}

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// How many records were checked.
    pub records: u64,
    /// The last sequence and its hash ([`Head::EMPTY`] for an empty chain).
    pub head: Head,
}

impl ChainReport {
    pub fn head_hash_hex(&self) -> String {
        hex::encode(self.head.hash)
    }
}

/// Where and how a chain is broken. `sequence` names the record to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence {sequence}: {reason}")]
pub struct ChainBroken {
    pub sequence: i64,
    pub reason: BreakReason,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakReason {
    /// The record does not hash to its stored hash: a field (or its `prev_hash`) was changed.
    #[error("the record's content does not match its hash (altered)")]
    Altered,
    /// The record hashes consistently, but its successor chained from a different hash: the record
    /// was altered and re-hashed (or the successor's link was forged).
    #[error("record {successor} does not chain from this record's hash (altered and re-hashed)")]
    Rehashed { successor: i64 },
    /// Sequence 1 does not chain from [`GENESIS`].
    #[error("the first record does not chain from the genesis hash")]
    NotFromGenesis,
    /// This sequence is absent; the next record has sequence `found` (deleted records).
    #[error("the record is missing (next found: {found})")]
    Missing { found: i64 },
    /// A record with sequence `found` came where this one was expected (reordered or duplicated).
    #[error("a record with sequence {found} came in its place (reordered or duplicated)")]
    OutOfOrder { found: i64 },
    /// The record belongs to another workspace than the chain's first record.
    #[error("the record belongs to another workspace")]
    WrongWorkspace,
    /// A stored hash is not 64 hex digits.
    #[error("a stored hash is malformed")]
    MalformedHash,
    /// The chain's stored head (last sequence and hash, written with every append) disagrees with
    /// the records: newest records deleted, or the last one re-hashed.
    #[error("the stored head of the chain disagrees with the records (truncated or re-hashed)")]
    HeadMismatch,
}

/// Checks records one at a time, in sequence order, without holding them all (the store streams
/// a workspace's records through it).
#[derive(Debug, Clone)]
pub struct Verifier {
    workspace: Option<String>,
    head: Head,
    records: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            workspace: None,
            head: Head::EMPTY,
            records: 0,
        }
    }

    /// The head so far.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Checks the next record.
    pub fn push(&mut self, r: &Record) -> Result<(), ChainBroken> {
        let expected = self.head.sequence + 1;
        if r.sequence > expected {
            return Err(broken(expected, BreakReason::Missing { found: r.sequence }));
        }
        if r.sequence < expected {
            return Err(broken(expected, BreakReason::OutOfOrder { found: r.sequence }));
        }
        match &self.workspace {
            Some(w) if *w != r.workspace_id => {
                return Err(broken(r.sequence, BreakReason::WrongWorkspace));
            }
            Some(_) => {}
            None => self.workspace = Some(r.workspace_id.clone()),
        }
        // The record's own hash first: a changed record is named as such, not as a bad link.
        if compute_hash(&r.prev_hash, r) != r.hash {
            return Err(broken(r.sequence, BreakReason::Altered));
        }
        if r.prev_hash != self.head.hash {
            return Err(if self.head.sequence == 0 {
                broken(r.sequence, BreakReason::NotFromGenesis)
            } else {
                broken(
                    self.head.sequence,
                    BreakReason::Rehashed {
                        successor: r.sequence,
                    },
                )
            });
        }
        self.head = Head {
            sequence: r.sequence,
            hash: r.hash,
        };
        self.records += 1;
        Ok(())
    }

    pub fn finish(self) -> ChainReport {
        ChainReport {
            records: self.records,
            head: self.head,
        }
    }
}

/// Verifies one workspace's records, given in sequence order.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a Record>) -> Result<ChainReport, ChainBroken> {
    let mut verifier = Verifier::new();
    for r in records {
        verifier.push(r)?;
    }
    Ok(verifier.finish())
}

fn broken(sequence: i64, reason: BreakReason) -> ChainBroken {
    ChainBroken { sequence, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{action, entry::tests::event};

    fn chain(workspace: &str, n: usize) -> Vec<Record> {
        let mut head = Head::EMPTY;
        (0..n)
            .map(|i| {
                let mut e = event(workspace, action::ALL[i % action::ALL.len()]);
                e.detail = format!("record {i}");
                head.append(&AuditEntry::try_from(e).unwrap())
            })
            .collect()
    }

    fn sample() -> Record {
        Record {
            workspace_id: "ws1".into(),
            sequence: 1,
            event_id: "0190a4c2-0000-7000-8000-000000000001".into(),
            actor_kind: "user".into(),
            actor_id: "u1".into(),
            action: "auth.login".into(),
            target_kind: "".into(),
            target_id: "".into(),
            at_ms: 1_700_000_000_123,
            trace_id: "".into(),
            outcome: "success".into(),
            detail: "".into(),
            service: "gateway".into(),
            prev_hash: GENESIS,
            hash: GENESIS,
        }
    }

    #[test]
    fn a_clean_chain_verifies() {
        let records = chain("ws1", 20);
        let report = verify(&records).unwrap();
        assert_eq!(report.records, 20);
        assert_eq!(report.head.sequence, 20);
        assert_eq!(report.head.hash, records[19].hash);
        assert_eq!(report.head_hash_hex().len(), 64);
    }

    #[test]
    fn an_empty_chain_verifies_with_the_genesis_head() {
        let report = verify(&[]).unwrap();
        assert_eq!(report.records, 0);
        assert_eq!(report.head, Head::EMPTY);
    }

    #[test]
    fn the_first_record_chains_from_zeros() {
        let records = chain("ws1", 2);
        assert_eq!(records[0].sequence, 1);
        assert_eq!(records[0].prev_hash, [0u8; 32]);
        assert_eq!(records[0].hash, compute_hash(&[0u8; 32], &records[0]));
        assert_eq!(records[1].prev_hash, records[0].hash);
    }

    #[test]
    fn a_first_record_not_from_zeros_is_detected() {
        let mut records = chain("ws1", 3);
        records[0].prev_hash = [1; 32];
        records[0].hash = compute_hash(&records[0].prev_hash, &records[0]);
        let err = verify(&records).unwrap_err();
        assert_eq!(err, broken(1, BreakReason::NotFromGenesis));
    }

    /// Pins the encoding: stored chains must verify forever, so any change to `canonical_bytes`
    /// has to be deliberate (a new tag). The expected values were computed independently (Python's
    /// hashlib over the documented layout).
    #[test]
    fn the_encoding_and_hash_are_pinned() {
        let r = sample();
        let bytes = canonical_bytes(&r);
        let mut expected = Vec::new();
        let s = |out: &mut Vec<u8>, v: &[u8]| {
            out.extend_from_slice(&(v.len() as u64).to_be_bytes());
            out.extend_from_slice(v);
        };
        s(&mut expected, b"scifer.audit.record.v1");
        s(&mut expected, b"ws1");
        expected.extend_from_slice(&1i64.to_be_bytes());
        s(&mut expected, b"0190a4c2-0000-7000-8000-000000000001");
        s(&mut expected, b"user");
        s(&mut expected, b"u1");
        s(&mut expected, b"auth.login");
        s(&mut expected, b"");
        s(&mut expected, b"");
        expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        s(&mut expected, b"");
        s(&mut expected, b"success");
        s(&mut expected, b"");
        s(&mut expected, b"gateway");
        assert_eq!(bytes, expected);
        assert_eq!(hex::encode(compute_hash(&GENESIS, &r)), PINNED_HASH);
    }

    const PINNED_HASH: &str = "7459fc67c409de8307e46ffdd6792ab6f0518cd568935256f2f87891e8c65bc0";

    #[test]
    fn the_encoding_is_unambiguous() {
        // Moving bytes between neighbouring fields changes the encoding.
        let a = Record {
            actor_id: "ab".into(),
            action: "c.d".into(),
            ..sample()
        };
        let b = Record {
            actor_id: "a".into(),
            action: "bc.d".into(),
            ..sample()
        };
        assert_ne!(canonical_bytes(&a), canonical_bytes(&b));
        let c = Record {
            target_kind: "x".into(),
            target_id: "".into(),
            ..sample()
        };
        let d = Record {
            target_kind: "".into(),
            target_id: "x".into(),
            ..sample()
        };
        assert_ne!(canonical_bytes(&c), canonical_bytes(&d));
        // The chain position and the workspace are part of the content.
        assert_ne!(
            canonical_bytes(&sample()),
            canonical_bytes(&Record {
                sequence: 2,
                ..sample()
            })
        );
        assert_ne!(
            canonical_bytes(&sample()),
            canonical_bytes(&Record {
                workspace_id: "ws2".into(),
                ..sample()
            })
        );
    }

    #[test]
    fn every_modified_field_is_detected() {
        type Spoiler = (&'static str, fn(&mut Record));
        let spoilers: Vec<Spoiler> = vec![
            ("workspace", |r| r.workspace_id.push('x')),
            ("event_id", |r| r.event_id.push('x')),
            ("actor_kind", |r| r.actor_kind = "system".into()),
            ("actor_id", |r| r.actor_id = "someone-else".into()),
            ("action", |r| r.action = "auth.login".into()),
            ("target_kind", |r| r.target_kind.push('x')),
            ("target_id", |r| r.target_id.push('x')),
            ("at_ms", |r| r.at_ms += 1),
            ("trace_id", |r| r.trace_id.clear()),
            ("outcome", |r| r.outcome = "denied".into()),
            ("detail", |r| r.detail = "nothing to see".into()),
            ("service", |r| r.service = "other".into()),
            ("prev_hash", |r| r.prev_hash[0] ^= 1),
            ("hash", |r| r.hash[31] ^= 1),
        ];
        for (field, spoil) in spoilers {
            let mut records = chain("ws1", 5);
            spoil(&mut records[2]);
            let err = verify(&records).unwrap_err();
            let expected = if field == "workspace" {
                BreakReason::WrongWorkspace
            } else {
                BreakReason::Altered
            };
            assert_eq!(err, broken(3, expected), "{field}");
        }
    }

    #[test]
    fn a_deleted_record_is_detected() {
        let mut records = chain("ws1", 5);
        records.remove(2);
        let err = verify(&records).unwrap_err();
        assert_eq!(err, broken(3, BreakReason::Missing { found: 4 }));
        // Deleting the first record too.
        let mut records = chain("ws1", 3);
        records.remove(0);
        assert_eq!(
            verify(&records).unwrap_err(),
            broken(1, BreakReason::Missing { found: 2 })
        );
    }

    #[test]
    fn a_deleted_record_with_renumbered_successors_is_detected() {
        let mut records = chain("ws1", 5);
        records.remove(2);
        for r in records.iter_mut().skip(2) {
            r.sequence -= 1;
        }
        assert_eq!(verify(&records).unwrap_err(), broken(3, BreakReason::Altered));
    }

    #[test]
    fn reordered_records_are_detected() {
        // Out of order in the sequence handed over.
        let mut records = chain("ws1", 5);
        records.swap(1, 2);
        assert_eq!(
            verify(&records).unwrap_err(),
            broken(2, BreakReason::Missing { found: 3 })
        );
        // Sequence numbers swapped so that the order looks right: the content no longer matches.
        let mut records = chain("ws1", 5);
        records.swap(1, 2);
        records[1].sequence = 2;
        records[2].sequence = 3;
        assert_eq!(verify(&records).unwrap_err(), broken(2, BreakReason::Altered));
        // A record repeated.
        let mut records = chain("ws1", 3);
        let again = records[1].clone();
        records.insert(2, again);
        assert_eq!(
            verify(&records).unwrap_err(),
            broken(3, BreakReason::OutOfOrder { found: 2 })
        );
    }

    #[test]
    fn a_forged_record_with_a_recomputed_hash_is_detected_by_its_successor() {
        let mut records = chain("ws1", 5);
        records[2].detail = "forged".into();
        records[2].hash = compute_hash(&records[2].prev_hash, &records[2]);
        assert_eq!(
            verify(&records).unwrap_err(),
            broken(3, BreakReason::Rehashed { successor: 4 })
        );
    }

    #[test]
    fn a_record_from_another_workspace_is_detected() {
        let mut records = chain("ws1", 3);
        let other = chain("ws2", 3);
        records[1] = other[1].clone();
        assert_eq!(
            verify(&records).unwrap_err(),
            broken(2, BreakReason::WrongWorkspace)
        );
    }

    #[test]
    fn chains_of_different_workspaces_differ_for_the_same_events() {
        let mut a = Head::EMPTY;
        let mut b = Head::EMPTY;
        let e = event("ws1", action::AUTH_LOGIN);
        let mut e2 = e.clone();
        e2.workspace_id = "ws2".into();
        let ra = a.append(&AuditEntry::try_from(e).unwrap());
        let rb = b.append(&AuditEntry::try_from(e2).unwrap());
        assert_eq!(ra.sequence, rb.sequence);
        assert_ne!(ra.hash, rb.hash);
    }
}
