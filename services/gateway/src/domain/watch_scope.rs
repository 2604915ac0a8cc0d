//! Which live inbox events one watcher receives. The subscription already limits a watch to one
//! workspace; this decides per event, for the member who watches:
//! - a read-marker move is personal (it carries that member's unread count), so only the member's
//!   own watchers (their other tabs and devices) receive it;
//! - a typing event is for teammates: the typist's own watchers never see themselves typing;
//! - a watch opened on one conversation receives only that conversation's events.
//!
//! Every member of a workspace may read all of its conversations (`ListConversations` and
//! `GetConversation` are open to viewers), so messages, status and assignment changes reach every
//! watcher of the workspace: the stream shows nothing the caller could not fetch.

use chrono::{DateTime, TimeDelta, Utc};
use scifer_proto::events::v1::{InboxEvent, TypingChanged, inbox_event::Kind};

use super::Invalid;

/// How long a "typing" state lasts without a newer event. Composers resend every few seconds
/// while the agent types, so a tab that closes mid-sentence stops showing within this time.
pub const TYPING_TTL: TimeDelta = TimeDelta::seconds(8);

/// The live event for `user` typing (or no longer typing) in `conversation_id`, and when it
/// lapses. The conversation id is checked for shape only: the event reaches only members of the
/// workspace, who can see every conversation of it anyway.
pub fn typing_event(
    workspace_id: &str,
    conversation_id: &str,
    user_id: &str,
    typing: bool,
    now: DateTime<Utc>,
) -> Result<(InboxEvent, DateTime<Utc>), Invalid> {
    let conversation_id = conversation_id.trim();
    if conversation_id.is_empty() {
        return Err(Invalid("conversation_id is required"));
    }
    if conversation_id.len() > 128
        || conversation_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Invalid("conversation_id is not a conversation id"));
    }
    let expires_at = if typing { now + TYPING_TTL } else { now };
    let event = InboxEvent {
        event_id: format!("typing.{conversation_id}.{user_id}.{}", now.timestamp_millis()),
        workspace_id: workspace_id.to_string(),
        at: Some(timestamp(now)),
        kind: Some(Kind::TypingChanged(TypingChanged {
            conversation_id: conversation_id.to_string(),
            user_id: user_id.to_string(),
            typing,
            expires_at: Some(timestamp(expires_at)),
        })),
    };
    Ok((event, expires_at))
}

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// One watcher's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchScope {
    /// The watching member's user id.
    pub user_id: String,
    /// `Some`: only this conversation's events.
    pub conversation_id: Option<String>,
}

impl WatchScope {
    pub fn new(user_id: impl Into<String>, conversation_id: &str) -> Self {
        let conversation_id = conversation_id.trim();
        Self {
            user_id: user_id.into(),
            conversation_id: (!conversation_id.is_empty()).then(|| conversation_id.to_string()),
        }
    }

    /// Whether `event` goes to this watcher. An event of a kind this gateway does not know (a
    /// newer inbox) is passed on only to whole-workspace watchers, whose clients ignore what they
    /// cannot read; it cannot be personal, as personal kinds are listed here.
    pub fn admits(&self, event: &InboxEvent) -> bool {
        let (conversation, personal_to, hidden_from) = match &event.kind {
            Some(Kind::MessageCreated(e)) => {
                (e.message.as_ref().map(|m| m.conversation_id.as_str()), None, None)
            }
            Some(Kind::MessageUpdated(e)) => {
                (e.message.as_ref().map(|m| m.conversation_id.as_str()), None, None)
            }
            Some(Kind::ConversationUpdated(e)) => {
                (e.conversation.as_ref().map(|c| c.id.as_str()), None, None)
            }
            Some(Kind::ReadMarkerMoved(e)) => {
                (Some(e.conversation_id.as_str()), Some(e.user_id.as_str()), None)
            }
            Some(Kind::TypingChanged(e)) => {
                (Some(e.conversation_id.as_str()), None, Some(e.user_id.as_str()))
            }
            None => (None, None, None),
        };
        if personal_to.is_some_and(|user| user != self.user_id) {
            return false;
        }
        if hidden_from.is_some_and(|user| user == self.user_id) {
            return false;
        }
        match &self.conversation_id {
            None => true,
            Some(wanted) => conversation == Some(wanted.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use scifer_proto::events::v1::{
        ConversationUpdated, MessageCreated, MessageUpdated, ReadMarkerMoved, TypingChanged,
    };
    use scifer_proto::inbox::v1::{Conversation, Message};

    use super::*;

    fn event(kind: Kind) -> InboxEvent {
        InboxEvent {
            event_id: "e".into(),
            workspace_id: "ws1".into(),
            at: None,
            kind: Some(kind),
        }
    }

    fn created(conversation: &str) -> InboxEvent {
        event(Kind::MessageCreated(MessageCreated {
            message: Some(Message {
                conversation_id: conversation.into(),
                ..Default::default()
            }),
        }))
    }

    fn updated(conversation: &str) -> InboxEvent {
        event(Kind::MessageUpdated(MessageUpdated {
            message: Some(Message {
                conversation_id: conversation.into(),
                ..Default::default()
            }),
        }))
    }

    fn conversation(conversation: &str) -> InboxEvent {
        event(Kind::ConversationUpdated(ConversationUpdated {
            conversation: Some(Conversation {
                id: conversation.into(),
                ..Default::default()
            }),
        }))
    }

    fn read(conversation: &str, user: &str) -> InboxEvent {
        event(Kind::ReadMarkerMoved(ReadMarkerMoved {
            conversation_id: conversation.into(),
            user_id: user.into(),
            read_message_id: "m1".into(),
            unread_count: 0,
        }))
    }

    fn typing(conversation: &str, user: &str) -> InboxEvent {
        event(Kind::TypingChanged(TypingChanged {
            conversation_id: conversation.into(),
            user_id: user.into(),
            typing: true,
            expires_at: None,
        }))
    }

    #[test]
    fn a_workspace_watcher_sees_every_shared_event() {
        let alice = WatchScope::new("alice", "");
        for e in [
            created("c1"),
            updated("c2"),
            conversation("c3"),
            typing("c1", "bob"),
        ] {
            assert!(alice.admits(&e), "{e:?}");
        }
    }

    #[test]
    fn read_markers_reach_only_their_own_member() {
        let alice = WatchScope::new("alice", "");
        assert!(alice.admits(&read("c1", "alice")));
        assert!(!alice.admits(&read("c1", "bob")));
        let alice_on_c1 = WatchScope::new("alice", "c1");
        assert!(alice_on_c1.admits(&read("c1", "alice")));
        assert!(!alice_on_c1.admits(&read("c2", "alice")));
    }

    #[test]
    fn nobody_sees_themselves_typing() {
        assert!(!WatchScope::new("alice", "").admits(&typing("c1", "alice")));
        assert!(WatchScope::new("bob", "").admits(&typing("c1", "alice")));
    }

    #[test]
    fn a_conversation_watcher_sees_only_that_conversation() {
        let on_c1 = WatchScope::new("alice", " c1 ");
        assert_eq!(on_c1.conversation_id.as_deref(), Some("c1"));
        for e in [
            created("c1"),
            updated("c1"),
            conversation("c1"),
            typing("c1", "bob"),
        ] {
            assert!(on_c1.admits(&e), "{e:?}");
        }
        for e in [
            created("c2"),
            updated("c2"),
            conversation("c2"),
            typing("c2", "bob"),
        ] {
            assert!(!on_c1.admits(&e), "{e:?}");
        }
    }

    #[test]
    fn typing_lasts_its_ttl_and_stopping_lapses_at_once() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .to_utc();
        let (event, until) = typing_event("ws1", " c1 ", "alice", true, now).unwrap();
        assert_eq!(until, now + TYPING_TTL);
        let Some(Kind::TypingChanged(t)) = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(
            (t.conversation_id.as_str(), t.user_id.as_str(), t.typing),
            ("c1", "alice", true)
        );
        assert_eq!(t.expires_at, Some(timestamp(now + TYPING_TTL)));
        assert_eq!(event.workspace_id, "ws1");
        let (_, until) = typing_event("ws1", "c1", "alice", false, now).unwrap();
        assert_eq!(until, now);
        for bad in ["", "  ", "c 1", "c\u{7}d", &"c".repeat(129)] {
            assert!(typing_event("ws1", bad, "alice", true, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_event_without_a_kind_goes_only_to_workspace_watchers() {
        let bare = InboxEvent::default();
        assert!(WatchScope::new("alice", "").admits(&bare));
        assert!(!WatchScope::new("alice", "c1").admits(&bare));
    }
}
