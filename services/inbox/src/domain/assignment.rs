//! Who a conversation belongs to: agent and team ids as the gateway names them, the status
//! changes a request may ask for, and the round robin of auto-assignment.

use scifer_proto::inbox::v1::ConversationStatus;

/// An agent (a gateway user id) or a team id: 1-128 letters, digits, '-' or '_'. The gateway
/// checks that an agent is a member of the workspace; here the shape keeps ids out of
/// everything else (subjects, logs) harmless.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentId(String);

#[derive(Debug, thiserror::Error)]
#[error("{0} must be 1-128 characters of letters, digits, '-' or '_'")]
pub struct InvalidId(pub &'static str);

fn valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AgentId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        if valid_id(raw) {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidId("agent id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An assignee or team as a request sets it: `None` to clear, or a well-formed id.
pub fn optional_id(raw: &str, what: &'static str) -> Result<Option<String>, InvalidId> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if valid_id(raw) {
        Ok(Some(raw.to_string()))
    } else {
        Err(InvalidId(what))
    }
}

/// A status change asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Unchanged,
    /// OPEN, PENDING or RESOLVED: any snooze is cleared.
    To(ConversationStatus),
    Snooze {
        until_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStatusChange {
    #[error("snoozed_until is required with SNOOZED")]
    SnoozeWithoutTime,
    #[error("snoozed_until must be in the future")]
    SnoozeInThePast,
    #[error("snoozed_until is only allowed with SNOOZED")]
    TimeWithoutSnooze,
    #[error("unknown status")]
    Unknown,
}

impl StatusChange {
    /// Reads a request's status and snooze time, `now_ms` deciding what "future" means.
    pub fn parse(
        status: i32,
        snoozed_until_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Self, InvalidStatusChange> {
        let status = ConversationStatus::try_from(status).map_err(|_| InvalidStatusChange::Unknown)?;
        match (status, snoozed_until_ms) {
            (ConversationStatus::Snoozed, None) => Err(InvalidStatusChange::SnoozeWithoutTime),
            (ConversationStatus::Snoozed, Some(until)) if until <= now_ms => {
                Err(InvalidStatusChange::SnoozeInThePast)
            }
            (ConversationStatus::Snoozed, Some(until_ms)) => Ok(Self::Snooze { until_ms }),
            (_, Some(_)) => Err(InvalidStatusChange::TimeWithoutSnooze),
            (ConversationStatus::Unspecified, None) => Ok(Self::Unchanged),
            (other, None) => Ok(Self::To(other)),
        }
    }
}

/// Whether a customer's new message reopens a conversation in this status. PENDING stays
/// PENDING: it waits on something other than the customer (a bot, a colleague).
pub fn reopened_by_customer(status: i32) -> bool {
    status == ConversationStatus::Resolved as i32 || status == ConversationStatus::Snoozed as i32
}

/// The round robin: the first of `agents` (sorted by id) after `cursor`, wrapping around, whose
/// count of OPEN conversations is under `cap` (0: no cap). None when every one is at the cap.
pub fn next_agent<'a>(
    agents: &'a [String],
    cursor: &str,
    open: impl Fn(&str) -> i64,
    cap: i32,
) -> Option<&'a str> {
    let start = agents.partition_point(|a| a.as_str() <= cursor);
    agents[start..]
        .iter()
        .chain(agents[..start].iter())
        .map(String::as_str)
        .find(|a| cap <= 0 || open(a) < i64::from(cap))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn agents(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_round_robin_takes_turns_and_wraps() {
        let all = agents(&["a", "b", "c"]);
        let none = |_: &str| 0;
        assert_eq!(next_agent(&all, "", none, 0), Some("a"));
        assert_eq!(next_agent(&all, "a", none, 0), Some("b"));
        assert_eq!(next_agent(&all, "c", none, 0), Some("a"));
        // The last one assigned left the rotation: the next id after it.
        assert_eq!(next_agent(&all, "bb", none, 0), Some("c"));
        assert_eq!(next_agent(&[], "a", none, 0), None);
    }

    #[test]
    fn agents_at_the_cap_are_skipped() {
        let all = agents(&["a", "b", "c"]);
        let open: HashMap<&str, i64> = [("a", 2), ("b", 2), ("c", 1)].into();
        let count = |a: &str| open.get(a).copied().unwrap_or(0);
        assert_eq!(next_agent(&all, "", count, 2), Some("c"));
        assert_eq!(next_agent(&all, "c", count, 2), Some("c"), "the only one left");
        assert_eq!(next_agent(&all, "", count, 1), None, "everyone at the cap");
        assert_eq!(next_agent(&all, "", count, 0), Some("a"), "no cap");
    }

    #[test]
    fn status_changes_are_read_against_now() {
        let now = 1_000;
        assert_eq!(
            StatusChange::parse(ConversationStatus::Unspecified as i32, None, now),
            Ok(StatusChange::Unchanged)
        );
        assert_eq!(
            StatusChange::parse(ConversationStatus::Resolved as i32, None, now),
            Ok(StatusChange::To(ConversationStatus::Resolved))
        );
        assert_eq!(
            StatusChange::parse(ConversationStatus::Snoozed as i32, Some(2_000), now),
            Ok(StatusChange::Snooze { until_ms: 2_000 })
        );
        assert_eq!(
            StatusChange::parse(ConversationStatus::Snoozed as i32, None, now),
            Err(InvalidStatusChange::SnoozeWithoutTime)
        );
        assert_eq!(
            StatusChange::parse(ConversationStatus::Snoozed as i32, Some(now), now),
            Err(InvalidStatusChange::SnoozeInThePast)
        );
        assert_eq!(
            StatusChange::parse(ConversationStatus::Open as i32, Some(2_000), now),
            Err(InvalidStatusChange::TimeWithoutSnooze)
        );
        assert_eq!(
            StatusChange::parse(99, None, now),
            Err(InvalidStatusChange::Unknown)
        );
    }

    #[test]
    fn only_resolved_and_snoozed_reopen() {
        assert!(reopened_by_customer(ConversationStatus::Resolved as i32));
        assert!(reopened_by_customer(ConversationStatus::Snoozed as i32));
        assert!(!reopened_by_customer(ConversationStatus::Open as i32));
        assert!(!reopened_by_customer(ConversationStatus::Pending as i32));
    }

    #[test]
    fn ids_keep_their_shape() {
        assert!(AgentId::parse("0190b7e2-7c1d-7000-8000-000000000001").is_ok());
        for bad in ["", "a.b", "a b", &"x".repeat(129)] {
            assert!(AgentId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(optional_id("  ", "team id").unwrap(), None);
        assert_eq!(optional_id("t-1", "team id").unwrap(), Some("t-1".into()));
        assert!(optional_id("t.1", "team id").is_err());
    }
}
