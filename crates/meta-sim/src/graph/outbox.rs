//! The webhooks Meta sends by itself after something happens on the Graph side: echoes,
//! delivery and read receipts after a Messenger/Instagram send, WhatsApp `statuses`, handover
//! events, template status updates. Handlers only queue [`Chain`]s while holding the world's
//! lock; [`GraphSim::flush_webhooks`] spawns one task per chain after the lock is released, so an
//! HTTP answer never waits for a webhook. A chain's steps go out one after the other (echo →
//! delivery → read), signed and serialized by the same [`WebhookSender`] as everything else.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::GraphSim;
use super::world::World;
use crate::AppSecret;
use crate::webhooks::delivery::{Delivery, Slot, object};
use crate::webhooks::messaging::{MessagingEvent, Platform};
use crate::webhooks::whatsapp::{Business, Status, WaError};
use crate::webhooks::{RetryPolicy, SendError, SendMode, WebhookSender, instagram, messenger};

/// When the webhooks that follow a send go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTiming {
    /// Before the first webhook of a chain (the echo, WhatsApp `sent`). Default 50 ms.
    pub first: Duration,
    /// Between later webhooks of the chain (delivery, read). Default 100 ms.
    pub between: Duration,
    /// Retries per webhook when the receiver does not answer 200. Default: none, so a test's
    /// failing receiver sees each webhook exactly once.
    pub retry: RetryPolicy,
}

impl Default for WebhookTiming {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(50),
            between: Duration::from_millis(100),
            retry: RetryPolicy::none(),
        }
    }
}

/// What a customer's device does with the messages sent to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct RecipientBehaviour {
    /// Messenger `message_deliveries`, WhatsApp `delivered`.
    pub delivers: bool,
    /// Messenger `message_reads`, Instagram `messaging_seen`, WhatsApp `read`.
    pub reads: bool,
}

impl Default for RecipientBehaviour {
    fn default() -> Self {
        Self {
            delivers: true,
            reads: true,
        }
    }
}

/// One webhook POST the simulator made (or tried to).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmittedWebhook {
    /// Top-level `object`.
    pub object: String,
    /// `entry[0].id`.
    pub entry_id: String,
    /// The webhook field it belongs to (`message_echoes`, `message_deliveries`, `statuses`…
    /// for WhatsApp the change's `field`, e.g. `messages`).
    pub field: String,
    /// The payload.
    pub body: Value,
    /// The receiver's last answer; `None` when it never answered (or no runtime was there to
    /// send it).
    pub status: Option<u16>,
    /// Attempts made.
    pub attempts: usize,
}

/// One webhook of a chain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub delay: Duration,
    pub delivery: Delivery,
}

/// Webhooks that go out in order, one task per chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Chain {
    pub steps: Vec<Step>,
}

impl Chain {
    pub fn push(&mut self, delay: Duration, delivery: Delivery) {
        self.steps.push(Step { delay, delivery });
    }

    pub fn single(delay: Duration, delivery: Delivery) -> Self {
        let mut c = Self::default();
        c.push(delay, delivery);
        c
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: String,
    sender: WebhookSender,
}

/// The webhook target and what is waiting to be sent to it.
#[derive(Debug, Default)]
pub struct Outbox {
    target: Option<Target>,
    /// Delays and retries.
    pub timing: WebhookTiming,
    pending: Vec<Chain>,
    behaviours: HashMap<String, RecipientBehaviour>,
    /// Only send fields the app subscribed to on the Page (or the Instagram account's Page)
    /// or WABA, as Meta does. Off by default so tests need not subscribe first.
    pub require_subscription: bool,
}

impl Outbox {
    /// Whether webhooks go anywhere.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    /// How `customer`'s device behaves.
    pub fn behaviour(&self, customer: &str) -> RecipientBehaviour {
        self.behaviours.get(customer).copied().unwrap_or_default()
    }
}

/// The webhook field a delivery belongs to, from its first item.
pub fn field_of(delivery: &Delivery) -> String {
    let Some(entry) = delivery.entries.first() else {
        return String::new();
    };
    if let Some(change) = entry.changes.first() {
        return change["field"].as_str().unwrap_or_default().to_owned();
    }
    if !entry.standby.is_empty() {
        return "standby".to_owned();
    }
    let Some(event) = entry.messaging.first() else {
        return String::new();
    };
    let instagram = delivery.object == object::INSTAGRAM;
    let key = [
        "message",
        "delivery",
        "read",
        "reaction",
        "postback",
        "message_edit",
    ]
    .into_iter()
    .chain([
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
    ])
    .find(|k| event.get(*k).is_some())
    .unwrap_or_default();
    match key {
        "message" if event["message"]["is_echo"] == true && !instagram => "message_echoes",
        "message" => "messages",
        "delivery" => "message_deliveries",
        "read" if instagram => "messaging_seen",
        "read" => "message_reads",
        "reaction" => "message_reactions",
        "postback" => "messaging_postbacks",
        "message_edit" => "message_edits",
        "" => "",
        _ => "messaging_handovers",
    }
    .to_owned()
}

impl World {
    /// Queue a chain for the webhook target (dropped when there is none, as Meta sends nothing
    /// without a callback URL). With `require_subscription`, steps for fields the app is not
    /// subscribed to are left out.
    pub(crate) fn schedule(&mut self, mut chain: Chain) {
        if !self.outbox.active() {
            return;
        }
        if self.outbox.require_subscription {
            chain.steps.retain(|s| self.is_subscribed(&s.delivery));
        }
        if !chain.steps.is_empty() {
            self.outbox.pending.push(chain);
        }
    }

    fn is_subscribed(&self, delivery: &Delivery) -> bool {
        let Some(entry) = delivery.entries.first() else {
            return false;
        };
        let object_id = self
            .ig(&entry.id)
            .map_or_else(|| entry.id.clone(), |ig| ig.page_id.clone());
        let field = field_of(delivery);
        self.subscribed_fields(&object_id)
            .is_some_and(|fields| fields.contains(&field))
    }

    /// `app_id` as echoes carry it: a number when the app id is numeric (always, on Meta).
    pub(crate) fn app_id_value(&self) -> Value {
        self.config
            .app_id
            .parse::<u64>()
            .map_or_else(|_| Value::from(self.config.app_id.clone()), Value::from)
    }
}

/// A message our app sent on Messenger or Instagram, as its echo needs it.
pub(crate) struct SentOnMessenger<'a> {
    pub platform: Platform,
    /// Page or Instagram account id.
    pub account: &'a str,
    pub customer: &'a str,
    pub mid: &'a str,
    /// The Send API's `message` object.
    pub message: &'a Value,
    pub app_id: Value,
    pub at_ms: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Echo, then (Messenger) delivery and read, or (Instagram) `messaging_seen`.
pub(crate) fn after_messenger_send(
    sent: &SentOnMessenger<'_>,
    who: RecipientBehaviour,
    timing: &WebhookTiming,
) -> Chain {
    let mut echo = Map::new();
    echo.insert("mid".into(), sent.mid.into());
    echo.insert("is_echo".into(), true.into());
    echo.insert("app_id".into(), sent.app_id.clone());
    for key in ["metadata", "text"] {
        if let Some(v) = sent.message.get(key) {
            echo.insert(key.into(), v.clone());
        }
    }
    if let Some(att) = sent.message.get("attachment") {
        let mut payload = att.get("payload").cloned().unwrap_or_else(|| json!({}));
        if let Some(p) = payload.as_object_mut() {
            p.remove("is_reusable");
        }
        echo.insert(
            "attachments".into(),
            json!([{"type": att.get("type").cloned().unwrap_or_else(|| "file".into()), "payload": payload}]),
        );
    } else if let Some(sticker) = sent.message.get("sticker_id") {
        echo.insert(
            "attachments".into(),
            json!([{"type": "sticker", "payload": {"sticker_id": sticker}}]),
        );
    }
    let mut chain = Chain::default();
    let echo = MessagingEvent::new(
        sent.platform,
        sent.account,
        sent.customer,
        false,
        "message",
        Value::Object(echo),
    )
    .timestamp_ms(sent.at_ms);
    chain.push(timing.first, echo.into_delivery());
    let mut t = sent.at_ms + ms(timing.first);
    match sent.platform {
        Platform::Messenger => {
            if who.delivers {
                t += ms(timing.between);
                let d = messenger::delivery(sent.account, sent.customer, &[sent.mid.to_owned()], t)
                    .timestamp_ms(t);
                chain.push(timing.between, d.into_delivery());
            }
            if who.reads {
                t += ms(timing.between);
                let r = messenger::read(sent.account, sent.customer, t).timestamp_ms(t);
                chain.push(timing.between, r.into_delivery());
            }
        }
        // Instagram has no delivery receipts, only `messaging_seen` with the mid.
        Platform::Instagram => {
            if who.reads {
                t += ms(timing.between);
                let r = instagram::seen(sent.account, sent.customer, sent.mid).timestamp_ms(t);
                chain.push(timing.between, r.into_delivery());
            }
        }
    }
    chain
}

/// A WhatsApp message our app sent.
pub(crate) struct SentOnWhatsApp<'a> {
    pub business: Business,
    pub wamid: &'a str,
    /// `recipient_id` of the statuses (the wa_id).
    pub recipient: &'a str,
    pub callback_data: Option<&'a str>,
    pub at_s: i64,
}

impl SentOnWhatsApp<'_> {
    fn status(&self, s: Status) -> Delivery {
        let s = match self.callback_data {
            Some(d) => s.biz_opaque_callback_data(d),
            None => s,
        };
        self.business.status(s).into_delivery()
    }
}

/// `sent`, then `delivered` and `read` as the recipient's device allows (WhatsApp may skip
/// `delivered`, so a reader who "does not deliver" still reads).
pub(crate) fn after_whatsapp_send(
    sent: &SentOnWhatsApp<'_>,
    pricing: &Value,
    who: RecipientBehaviour,
    timing: &WebhookTiming,
) -> Chain {
    let with_pricing = |s: Status| s.pricing(Some(pricing.clone()));
    let mut chain = Chain::default();
    let t = sent.at_s;
    chain.push(
        timing.first,
        sent.status(with_pricing(
            Status::sent(sent.wamid, sent.recipient).timestamp_s(t),
        )),
    );
    if who.delivers {
        let s = Status::delivered(sent.wamid, sent.recipient).timestamp_s(t + 1);
        chain.push(timing.between, sent.status(with_pricing(s)));
    }
    if who.reads {
        let s = Status::read(sent.wamid, sent.recipient).timestamp_s(t + 2);
        chain.push(timing.between, sent.status(with_pricing(s)));
    }
    chain
}

/// A `failed` status carrying `error` (e.g. 131047 outside the window).
pub(crate) fn whatsapp_failed(sent: &SentOnWhatsApp<'_>, error: WaError, timing: &WebhookTiming) -> Chain {
    let s = Status::failed(sent.wamid, sent.recipient, error).timestamp_s(sent.at_s);
    Chain::single(timing.first, sent.status(s))
}

/// Decrements the in-flight count when a chain's task ends, however it ends.
struct InFlight(std::sync::Arc<super::Inner>);

impl InFlight {
    fn start(inner: std::sync::Arc<super::Inner>) -> Self {
        inner.in_flight.send_modify(|n| *n += 1);
        Self(inner)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn record(inner: &super::Inner, delivery: &Delivery, status: Option<u16>, attempts: usize) {
    let emitted = EmittedWebhook {
        object: delivery.object.clone(),
        entry_id: delivery.entries.first().map(|e| e.id.clone()).unwrap_or_default(),
        field: field_of(delivery),
        body: delivery.to_value(),
        status,
        attempts,
    };
    inner
        .emitted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(emitted);
}

impl GraphSim {
    /// Send webhooks to `url`, signed with `app_secret` like Meta signs them: the echoes,
    /// receipts and statuses that follow accepted sends, handover events, template status
    /// updates, and whatever [`Self::emit`] is given. Without a target none are sent.
    pub fn set_webhook_target(&self, url: impl Into<String>, app_secret: AppSecret) -> Result<(), SendError> {
        let sender = WebhookSender::new(app_secret)?;
        self.lock().outbox.target = Some(Target {
            url: url.into(),
            sender,
        });
        Ok(())
    }

    /// Stop sending webhooks (queued ones are dropped).
    pub fn clear_webhook_target(&self) {
        let mut w = self.lock();
        w.outbox.target = None;
        w.outbox.pending.clear();
    }

    /// Delays and retries of emitted webhooks.
    pub fn set_webhook_timing(&self, timing: WebhookTiming) {
        self.lock().outbox.timing = timing;
    }

    /// What `customer_id`'s device does with our messages (default: delivers and reads). With
    /// `delivers: false, reads: false` a message stays at "sent".
    pub fn set_recipient_behaviour(&self, customer_id: &str, behaviour: RecipientBehaviour) {
        self.lock()
            .outbox
            .behaviours
            .insert(customer_id.to_owned(), behaviour);
    }

    /// Only emit fields the app subscribed to (`subscribed_apps`), as Meta does. Default off.
    pub fn set_require_subscription(&self, on: bool) {
        self.lock().outbox.require_subscription = on;
    }

    /// Send `delivery` to the webhook target as it is (e.g. one from [`Self::inbound_text`]),
    /// in the background.
    pub fn emit(&self, delivery: Delivery) {
        self.lock().schedule(Chain::single(Duration::ZERO, delivery));
        self.flush_webhooks();
    }

    /// Every webhook sent so far, in the order they were sent.
    pub fn emitted_webhooks(&self) -> Vec<EmittedWebhook> {
        self.inner
            .emitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves once no webhook is waiting or being sent: what a test awaits before asserting
    /// that something was *not* sent.
    pub async fn webhooks_settled(&self) {
        let mut rx = self.inner.in_flight.subscribe();
        // Err = sender gone, impossible while `self` holds it.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Spawn the queued chains. Called after every Graph call and steering method, outside
    /// the world's lock.
    pub(crate) fn flush_webhooks(&self) {
        let (chains, target, retry) = {
            let mut w = self.lock();
            if w.outbox.pending.is_empty() {
                return;
            }
            (
                std::mem::take(&mut w.outbox.pending),
                w.outbox.target.clone(),
                w.outbox.timing.retry.clone(),
            )
        };
        let Some(target) = target else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: simulator webhooks recorded but not sent");
            for step in chains.iter().flat_map(|c| &c.steps) {
                record(&self.inner, &step.delivery, None, 0);
            }
            return;
        };
        for chain in chains {
            let guard = InFlight::start(self.inner.clone());
            let (target, retry) = (target.clone(), retry.clone());
            runtime.spawn(async move {
                for step in chain.steps {
                    if !step.delay.is_zero() {
                        tokio::time::sleep(step.delay).await;
                    }
                    let report = target
                        .sender
                        .deliver_with_retry(&target.url, &step.delivery, &SendMode::Valid, &retry)
                        .await;
                    let status = report
                        .attempts
                        .last()
                        .and_then(|a| a.result.as_ref().ok().map(|o| o.status.as_u16()));
                    record(&guard.0, &step.delivery, status, report.attempts.len());
                }
                drop(guard);
            });
        }
    }
}

/// The `Slot` an inbound event goes to for a thread owned by `owner`.
pub(crate) fn slot_for(owner: Option<&str>, our_app_id: &str) -> Slot {
    match owner {
        Some(o) if o != our_app_id => Slot::Standby,
        _ => Slot::Messaging,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent<'a>(platform: Platform, message: &'a Value) -> SentOnMessenger<'a> {
        SentOnMessenger {
            platform,
            account: "page",
            customer: "psid",
            mid: "m_1",
            message,
            app_id: json!(42),
            at_ms: 1_000,
        }
    }

    fn fields(chain: &Chain) -> Vec<String> {
        chain.steps.iter().map(|s| field_of(&s.delivery)).collect()
    }

    #[test]
    fn messenger_chain_is_echo_delivery_read_with_our_mid_and_metadata() {
        let msg = json!({"text": "hi", "metadata": "ticket-42"});
        let chain = after_messenger_send(
            &sent(Platform::Messenger, &msg),
            RecipientBehaviour::default(),
            &WebhookTiming::default(),
        );
        assert_eq!(
            fields(&chain),
            ["message_echoes", "message_deliveries", "message_reads"]
        );
        let echo = &chain.steps[0].delivery.to_value()["entry"][0]["messaging"][0];
        assert_eq!(echo["sender"]["id"], "page");
        assert_eq!(
            echo["message"],
            json!({"mid": "m_1", "is_echo": true, "app_id": 42, "metadata": "ticket-42", "text": "hi"})
        );
        let d = &chain.steps[1].delivery.to_value()["entry"][0]["messaging"][0];
        assert_eq!(d["delivery"]["mids"], json!(["m_1"]));
        assert_eq!(d["delivery"]["watermark"], 1_150);
        assert_eq!(chain.steps[0].delay, Duration::from_millis(50));
    }

    #[test]
    fn instagram_has_no_delivery_and_reads_by_mid() {
        let msg = json!({"attachment": {"type": "image", "payload": {"url": "https://x/y.png", "is_reusable": true}}});
        let chain = after_messenger_send(
            &sent(Platform::Instagram, &msg),
            RecipientBehaviour::default(),
            &WebhookTiming::default(),
        );
        assert_eq!(fields(&chain), ["messages", "messaging_seen"]);
        let echo = &chain.steps[0].delivery.to_value()["entry"][0]["messaging"][0];
        assert_eq!(
            echo["message"]["attachments"],
            json!([{"type": "image", "payload": {"url": "https://x/y.png"}}])
        );
        let silent = RecipientBehaviour {
            delivers: false,
            reads: false,
        };
        let chain = after_messenger_send(
            &sent(Platform::Messenger, &msg),
            silent,
            &WebhookTiming::default(),
        );
        assert_eq!(fields(&chain), ["message_echoes"]);
    }

    #[test]
    fn whatsapp_chain_carries_callback_data_and_pricing() {
        let s = SentOnWhatsApp {
            business: Business::new("waba", "phone", "1555"),
            wamid: "wamid.X",
            recipient: "5511",
            callback_data: Some("order-77"),
            at_s: 100,
        };
        let pricing = json!({"billable": true});
        let who = RecipientBehaviour {
            delivers: false,
            reads: true,
        };
        let chain = after_whatsapp_send(&s, &pricing, who, &WebhookTiming::default());
        let statuses: Vec<Value> = chain
            .steps
            .iter()
            .map(|st| st.delivery.to_value()["entry"][0]["changes"][0]["value"]["statuses"][0].clone())
            .collect();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0]["status"], "sent");
        assert_eq!(statuses[1]["status"], "read");
        assert!(
            statuses
                .iter()
                .all(|s| s["biz_opaque_callback_data"] == "order-77")
        );
        assert_eq!(statuses[0]["pricing"], pricing);
        let failed = whatsapp_failed(&s, WaError::re_engagement(), &WebhookTiming::default());
        let v = failed.steps[0].delivery.to_value();
        assert_eq!(
            v["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"],
            131_047
        );
    }

    #[test]
    fn require_subscription_keeps_only_subscribed_fields_and_no_target_sends_nothing() {
        use crate::graph::GraphSimConfig;
        let mut w = World::new(GraphSimConfig::new("1", AppSecret::new("s")));
        let user = w.add_user(None, "Ana", &[]);
        let page = w.add_page(None, &user, "P").unwrap();
        let msg = json!({"text": "x"});
        let chain = || {
            let mut s = sent(Platform::Messenger, &msg);
            s.account = &page;
            after_messenger_send(&s, RecipientBehaviour::default(), &WebhookTiming::default())
        };
        w.schedule(chain());
        assert!(w.outbox.pending.is_empty(), "no target, nothing queued");
        w.outbox.target = Some(Target {
            url: "http://127.0.0.1:9/".into(),
            sender: WebhookSender::new(AppSecret::new("s")).unwrap(),
        });
        w.schedule(chain());
        assert_eq!(fields(&w.outbox.pending[0]).len(), 3);
        w.outbox.pending.clear();
        w.outbox.require_subscription = true;
        w.page_mut(&page).unwrap().subscription = Some(vec!["message_echoes".into()]);
        w.schedule(chain());
        assert_eq!(fields(&w.outbox.pending[0]), ["message_echoes"]);
        w.outbox.pending.clear();
        w.page_mut(&page).unwrap().subscription = None;
        w.schedule(chain());
        assert!(w.outbox.pending.is_empty());
    }

    #[test]
    fn without_a_runtime_webhooks_are_recorded_unsent() {
        use crate::graph::GraphSimConfig;
        let sim = GraphSim::new(GraphSimConfig::new("1", AppSecret::new("s")));
        sim.emit(messenger::text("p", "c", "hi").into_delivery());
        assert!(sim.emitted_webhooks().is_empty(), "no target");
        sim.set_webhook_target("http://127.0.0.1:9/", AppSecret::new("s"))
            .unwrap();
        sim.emit(messenger::text("p", "c", "hi").into_delivery());
        let emitted = sim.emitted_webhooks();
        assert_eq!(emitted.len(), 1);
        assert_eq!((emitted[0].status, emitted[0].attempts), (None, 0));
        assert_eq!(emitted[0].field, "messages");
    }

    #[test]
    fn standby_only_when_another_app_owns_the_thread() {
        assert_eq!(slot_for(None, "1"), Slot::Messaging);
        assert_eq!(slot_for(Some("1"), "1"), Slot::Messaging);
        assert_eq!(slot_for(Some("2"), "1"), Slot::Standby);
    }
}
