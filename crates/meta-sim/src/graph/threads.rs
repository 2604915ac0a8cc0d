//! Threads between a business account (Page, Instagram account, WhatsApp number) and one
//! customer: when the customer last wrote (messaging windows, meta-platform.md §3.2–3.4), which
//! app owns the thread (Conversation Routing, §4) and the messages exchanged (Conversations
//! API). Plain data and rules; the Send APIs and the handover endpoints consult it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::errors::GraphError;
use super::world::digits;

const HOUR_MS: i64 = 3600 * 1000;
/// The standard messaging window (Messenger, Instagram, WhatsApp customer-service window).
pub const STANDARD_WINDOW_MS: i64 = 24 * HOUR_MS;
/// How long after the customer's last message a `HUMAN_AGENT` tag may be used.
pub const HUMAN_AGENT_WINDOW_MS: i64 = 7 * 24 * HOUR_MS;
/// The window a click-to-Messenger / click-to-Direct ad opens ("up to 7 days", policy of Sep 2026).
pub const AD_WINDOW_MS: i64 = 7 * 24 * HOUR_MS;
/// WhatsApp free-entry-point conversations (click-to-WhatsApp ads) are free for 72 h (pricing only).
pub const FREE_ENTRY_POINT_MS: i64 = 72 * HOUR_MS;
/// Instagram's Conversations API only returns the 20 most recent messages of a conversation.
pub const INSTAGRAM_MESSAGE_CAP: usize = 20;

/// The Page Inbox app, the usual other owner of a Messenger thread.
pub const PAGE_INBOX_APP_ID: &str = "263902037430900";

/// Which product a thread is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Keyed by Page id and PSID.
    Messenger,
    /// Keyed by Instagram account id and IGSID.
    Instagram,
    /// Keyed by phone number id and wa_id.
    WhatsApp,
}

/// One thread: business account × customer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadKey {
    /// Page id, Instagram account id or phone number id.
    pub account: String,
    /// PSID, IGSID or wa_id.
    pub customer: String,
}

impl ThreadKey {
    /// A key.
    pub fn new(account: &str, customer: &str) -> Self {
        Self {
            account: account.to_owned(),
            customer: customer.to_owned(),
        }
    }
}

/// An attachment as the Conversations API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    /// `image`, `video`, `audio`, `file`.
    pub kind: String,
    /// Where its bytes are.
    pub url: String,
    /// When known.
    pub mime_type: Option<String>,
    /// Bytes, when known.
    pub size: Option<usize>,
}

/// One message of a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// `m_…` / `aWdf…` / `wamid.…`.
    pub id: String,
    /// Written by the customer (else by the business).
    pub from_customer: bool,
    /// Text, empty for attachment-only messages.
    pub text: String,
    /// Attachments.
    pub attachments: Vec<StoredAttachment>,
    /// Simulated unix milliseconds.
    pub at_ms: i64,
}

/// What the world knows about one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Product.
    pub channel: Channel,
    /// Conversations API id (`t_…` on Messenger, `aWdf…` on Instagram).
    pub conversation_id: String,
    /// The customer's last message or interaction (ms).
    pub last_inbound_ms: Option<i64>,
    /// Until when a window opened by an ad click stays open (ms).
    pub ad_window_until_ms: Option<i64>,
    /// The app that owns the thread; `None` = idle (every app may answer).
    pub owner: Option<String>,
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
}

/// What a Messenger/Instagram send asks the window for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `RESPONSE`, `UPDATE` (or none) and sender actions: the standard window.
    Standard,
    /// `MESSAGE_TAG` + `HUMAN_AGENT`: 7 days.
    HumanAgent,
}

impl Thread {
    fn new(channel: Channel, key: &ThreadKey) -> Self {
        let conversation_id = match channel {
            // Real Instagram conversation ids are base64 blobs starting with `aWdf` (`ig_`);
            // URL-safe here so the id can sit in a path unescaped.
            Channel::Instagram => URL_SAFE_NO_PAD.encode(format!(
                "ig_conversation:1:IGConversation:{}:{}",
                key.account, key.customer
            )),
            Channel::Messenger | Channel::WhatsApp => format!("t_{}", digits("10", 17)),
        };
        Self {
            channel,
            conversation_id,
            last_inbound_ms: None,
            ad_window_until_ms: None,
            owner: None,
            messages: Vec::new(),
        }
    }

    /// Whether a send for `purpose` is inside the window at `now_ms`.
    pub fn window_open(&self, purpose: Purpose, now_ms: i64) -> bool {
        let Some(last) = self.last_inbound_ms else {
            return false;
        };
        let age = now_ms - last;
        let ad_open = self.ad_window_until_ms.is_some_and(|until| now_ms <= until);
        match purpose {
            Purpose::Standard => age <= STANDARD_WINDOW_MS || ad_open,
            Purpose::HumanAgent => age <= HUMAN_AGENT_WINDOW_MS || ad_open,
        }
    }

    /// Last activity (ms): the newest message, else the last inbound.
    pub fn updated_ms(&self) -> i64 {
        self.messages
            .last()
            .map(|m| m.at_ms)
            .or(self.last_inbound_ms)
            .unwrap_or(0)
    }

    /// Messages the Conversations API may show, newest first (Instagram: the 20 newest).
    pub fn visible_messages(&self) -> Vec<&StoredMessage> {
        let cap = match self.channel {
            Channel::Instagram => INSTAGRAM_MESSAGE_CAP,
            Channel::Messenger | Channel::WhatsApp => usize::MAX,
        };
        self.messages.iter().rev().take(cap).collect()
    }
}

/// How the Send APIs treat a recipient who never wrote to the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownRecipients {
    /// As Meta: Messenger/Instagram `100/2018001` (no matching user), WhatsApp free-form
    /// messages fail with `131047` (no open window). The default of [`super::GraphSim::new`].
    #[default]
    Reject,
    /// Treat them as inside the 24 h window. The demo world's default: its customers write
    /// through a separate webhook process the Graph side never hears about.
    InWindow,
}

/// How WhatsApp reports a free-form message outside the customer-service window (§3.4:
/// "typically asynchronous, some integrations see it synchronously").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhatsAppReengagement {
    /// Accepted (200 with a wamid), then a `failed` status webhook with error 131047.
    #[default]
    Async,
    /// A synchronous 400 with code 131047.
    Sync,
}

/// Every thread of the world, plus the policies that apply to them.
#[derive(Debug, Clone, Default)]
pub struct Threads {
    map: HashMap<ThreadKey, Thread>,
    /// Recipients who never wrote.
    pub unknown_recipients: UnknownRecipients,
    /// WhatsApp outside the window.
    pub reengagement: WhatsAppReengagement,
}

impl Threads {
    /// The thread, if the world knows it.
    pub fn get(&self, key: &ThreadKey) -> Option<&Thread> {
        self.map.get(key)
    }

    /// The thread, created (idle, never written) if missing.
    pub fn entry(&mut self, channel: Channel, key: &ThreadKey) -> &mut Thread {
        self.map
            .entry(key.clone())
            .or_insert_with(|| Thread::new(channel, key))
    }

    /// The customer wrote (or otherwise interacted) at `at_ms`; `via_ad` when the message came
    /// from an ad click, which keeps the window open for [`AD_WINDOW_MS`].
    pub fn customer_wrote(&mut self, channel: Channel, key: &ThreadKey, at_ms: i64, via_ad: bool) {
        let t = self.entry(channel, key);
        t.last_inbound_ms = Some(t.last_inbound_ms.map_or(at_ms, |l| l.max(at_ms)));
        if via_ad {
            let until = at_ms + AD_WINDOW_MS;
            t.ad_window_until_ms = Some(t.ad_window_until_ms.map_or(until, |u| u.max(until)));
        }
    }

    /// Add a message to the history (kept in time order); a customer's message also opens the
    /// window.
    pub fn record(&mut self, channel: Channel, key: &ThreadKey, message: StoredMessage) {
        if message.from_customer {
            self.customer_wrote(channel, key, message.at_ms, false);
        }
        let t = self.entry(channel, key);
        let pos = t.messages.partition_point(|m| m.at_ms <= message.at_ms);
        t.messages.insert(pos, message);
    }

    /// Messenger/Instagram: may our app (`our_app_id`) send to this thread now? Checks, in
    /// order, thread ownership, that the recipient is known, and the window.
    pub fn check_messenger_send(
        &self,
        key: &ThreadKey,
        instagram: bool,
        purpose: Purpose,
        our_app_id: &str,
        now_ms: i64,
    ) -> Result<(), GraphError> {
        let thread = self.map.get(key);
        if let Some(owner) = thread.and_then(|t| t.owner.as_deref())
            && owner != our_app_id
        {
            return Err(GraphError::not_thread_owner());
        }
        match thread.filter(|t| t.last_inbound_ms.is_some()) {
            None => match self.unknown_recipients {
                UnknownRecipients::Reject => Err(GraphError::no_matching_user()),
                UnknownRecipients::InWindow => Ok(()),
            },
            Some(t) if t.window_open(purpose, now_ms) => Ok(()),
            Some(_) => Err(GraphError::outside_window(instagram)),
        }
    }

    /// WhatsApp: is the customer-service window open (free-form messages allowed)?
    pub fn whatsapp_window_open(&self, key: &ThreadKey, now_ms: i64) -> bool {
        match self.map.get(key).filter(|t| t.last_inbound_ms.is_some()) {
            None => self.unknown_recipients == UnknownRecipients::InWindow,
            Some(t) => t.window_open(Purpose::Standard, now_ms),
        }
    }

    /// Whether the customer's last message came from an ad less than 72 h ago (WhatsApp free
    /// entry point pricing).
    pub fn free_entry_point(&self, key: &ThreadKey, now_ms: i64) -> bool {
        self.map.get(key).is_some_and(|t| {
            t.ad_window_until_ms
                .is_some_and(|until| now_ms <= until - AD_WINDOW_MS + FREE_ENTRY_POINT_MS)
        })
    }

    /// The thread holding message `id`, and the message.
    pub fn find_message(&self, id: &str) -> Option<(&ThreadKey, &Thread, &StoredMessage)> {
        self.map.iter().find_map(|(k, t)| {
            if t.channel == Channel::WhatsApp {
                return None;
            }
            t.messages.iter().find(|m| m.id == id).map(|m| (k, t, m))
        })
    }

    /// The thread with Conversations API id `id`.
    pub fn find_conversation(&self, id: &str) -> Option<(&ThreadKey, &Thread)> {
        self.map
            .iter()
            .find(|(_, t)| t.channel != Channel::WhatsApp && t.conversation_id == id)
    }

    /// Threads of `account` that have messages, most recently updated first.
    pub fn conversations_of(&self, account: &str) -> Vec<(&ThreadKey, &Thread)> {
        let mut out: Vec<_> = self
            .map
            .iter()
            .filter(|(k, t)| k.account == account && !t.messages.is_empty())
            .collect();
        out.sort_by(|a, b| b.1.updated_ms().cmp(&a.1.updated_ms()).then(a.0.cmp(b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const APP: &str = "111";

    fn key() -> ThreadKey {
        ThreadKey::new("page", "psid")
    }

    fn wrote(ago_ms: i64, via_ad: bool) -> Threads {
        let mut t = Threads::default();
        t.customer_wrote(Channel::Messenger, &key(), NOW - ago_ms, via_ad);
        t
    }

    fn check(t: &Threads, purpose: Purpose, instagram: bool) -> Result<(), (u32, Option<u32>)> {
        t.check_messenger_send(&key(), instagram, purpose, APP, NOW)
            .map_err(|e| (e.code, e.subcode))
    }

    #[test]
    fn standard_window_is_24h_and_human_agent_7_days() {
        let t = wrote(23 * HOUR_MS, false);
        assert_eq!(check(&t, Purpose::Standard, false), Ok(()));
        let t = wrote(25 * HOUR_MS, false);
        assert_eq!(check(&t, Purpose::Standard, false), Err((10, Some(2_018_278))));
        assert_eq!(check(&t, Purpose::Standard, true), Err((10, Some(2_534_022))));
        assert_eq!(check(&t, Purpose::HumanAgent, false), Ok(()));
        let t = wrote(8 * 24 * HOUR_MS, false);
        assert_eq!(check(&t, Purpose::HumanAgent, false), Err((10, Some(2_018_278))));
    }

    #[test]
    fn an_ad_click_keeps_the_window_open_for_7_days() {
        let t = wrote(3 * 24 * HOUR_MS, true);
        assert_eq!(check(&t, Purpose::Standard, false), Ok(()));
        let t = wrote(8 * 24 * HOUR_MS, true);
        assert!(check(&t, Purpose::Standard, false).is_err());
        assert!(wrote(HOUR_MS, true).free_entry_point(&key(), NOW));
        assert!(!wrote(73 * HOUR_MS, true).free_entry_point(&key(), NOW));
        assert!(!wrote(HOUR_MS, false).free_entry_point(&key(), NOW));
    }

    #[test]
    fn unknown_recipients_and_other_owners() {
        let mut t = Threads::default();
        assert_eq!(check(&t, Purpose::Standard, false), Err((100, Some(2_018_001))));
        assert!(!t.whatsapp_window_open(&key(), NOW));
        t.unknown_recipients = UnknownRecipients::InWindow;
        assert_eq!(check(&t, Purpose::Standard, false), Ok(()));
        assert!(t.whatsapp_window_open(&key(), NOW));
        let mut t = wrote(HOUR_MS, false);
        t.entry(Channel::Messenger, &key()).owner = Some(PAGE_INBOX_APP_ID.into());
        assert_eq!(check(&t, Purpose::Standard, false), Err((10, Some(2_018_300))));
        t.entry(Channel::Messenger, &key()).owner = Some(APP.into());
        assert_eq!(check(&t, Purpose::Standard, false), Ok(()));
    }

    #[test]
    fn history_is_time_ordered_and_instagram_shows_20() {
        let mut t = Threads::default();
        let k = ThreadKey::new("ig", "igsid");
        for i in (0..25).rev() {
            t.record(
                Channel::Instagram,
                &k,
                StoredMessage {
                    id: format!("m{i}"),
                    from_customer: i % 2 == 0,
                    text: String::new(),
                    attachments: Vec::new(),
                    at_ms: NOW + i,
                },
            );
        }
        let th = t.get(&k).unwrap();
        assert_eq!(th.messages[0].id, "m0");
        assert_eq!(th.last_inbound_ms, Some(NOW + 24));
        let visible = th.visible_messages();
        assert_eq!(visible.len(), 20);
        assert_eq!(visible[0].id, "m24");
        assert_eq!(visible[19].id, "m5");
        assert!(th.conversation_id.starts_with("aWdf"));
        assert!(t.find_message("m3").is_some());
        assert_eq!(t.conversations_of("ig").len(), 1);
    }
}
