//! Message edits. Messenger numbers the edits of a message (`num_edit`); a redelivered or
//! out-of-order older edit must not overwrite a newer text.

/// Whether an edit numbered `num_edit` at `at_ms` replaces the stored one (`stored_seq`, `stored_at_ms`;
/// both 0 when the message was never edited).
pub fn supersedes(stored_seq: i64, stored_at_ms: i64, num_edit: i64, at_ms: i64) -> bool {
    (num_edit, at_ms) > (stored_seq, stored_at_ms)
}

#[cfg(test)]
mod tests {
    use super::supersedes;

    #[test]
    fn later_edits_win_and_older_ones_are_ignored() {
        assert!(supersedes(0, 0, 1, 10));
        assert!(supersedes(1, 10, 2, 20));
        assert!(!supersedes(2, 20, 1, 10), "an older edit arriving late");
        assert!(!supersedes(2, 20, 2, 20), "the same edit again");
        // Without numbers (0), the timestamp decides.
        assert!(supersedes(0, 10, 0, 20));
    }
}
