//! Reactions on a message: at most one per party ("customer" or "business"), as on Messenger,
//! Instagram and WhatsApp. Each party's latest action wins by Meta's timestamp, and a removal is kept
//! as a tombstone so that a late "react" older than the removal does not bring the reaction back.

use serde::{Deserialize, Serialize};

pub const BY_CUSTOMER: &str = "customer";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionEntry {
    pub by: String,
    pub emoji: String,
    pub at_ms: i64,
    #[serde(default)]
    pub removed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reactions(Vec<ReactionEntry>);

impl Reactions {
    /// Parses the stored form; an unreadable value counts as no reactions rather than failing the batch.
    pub fn from_json(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "[]".into())
    }

    /// Applies one reaction event; returns whether anything visible or stored changed.
    pub fn apply(&mut self, by: &str, added: bool, emoji: &str, at_ms: i64) -> bool {
        let entry = ReactionEntry {
            by: by.to_string(),
            emoji: if added { emoji.to_string() } else { String::new() },
            at_ms,
            removed: !added,
        };
        match self.0.iter_mut().find(|e| e.by == by) {
            Some(existing) => {
                // Ties go to the new event, so that react-then-unreact in the same millisecond ends
                // removed only if the removal is processed last; redelivery of the same event is a no-op.
                if at_ms < existing.at_ms || *existing == entry {
                    return false;
                }
                *existing = entry;
                true
            }
            None => {
                self.0.push(entry);
                true
            }
        }
    }

    /// The reactions currently shown: `(by, emoji)`.
    pub fn visible(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|e| !e.removed)
            .map(|e| (e.by.as_str(), e.emoji.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(r: &Reactions) -> Vec<(String, String)> {
        r.visible().map(|(b, e)| (b.into(), e.into())).collect()
    }

    #[test]
    fn a_new_reaction_replaces_the_previous_one_of_the_same_party() {
        let mut r = Reactions::default();
        assert!(r.apply(BY_CUSTOMER, true, "❤", 10));
        assert!(r.apply(BY_CUSTOMER, true, "😮", 20));
        assert_eq!(shown(&r), vec![(BY_CUSTOMER.into(), "😮".into())]);
    }

    #[test]
    fn removal_hides_and_late_older_reaction_does_not_return() {
        let mut r = Reactions::default();
        r.apply(BY_CUSTOMER, true, "❤", 10);
        assert!(r.apply(BY_CUSTOMER, false, "", 30));
        assert!(shown(&r).is_empty());
        assert!(!r.apply(BY_CUSTOMER, true, "😮", 20), "older than the removal");
        assert!(shown(&r).is_empty());
    }

    #[test]
    fn redelivery_changes_nothing_and_json_round_trips() {
        let mut r = Reactions::default();
        r.apply(BY_CUSTOMER, true, "❤", 10);
        assert!(!r.apply(BY_CUSTOMER, true, "❤", 10));
        assert_eq!(Reactions::from_json(&r.to_json()), r);
        assert_eq!(Reactions::from_json("not json"), Reactions::default());
    }
}
