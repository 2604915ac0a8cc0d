//! The demo world: one business present on Messenger, Instagram and WhatsApp, and a few
//! customers writing in several languages. `make run` seeds channels with these ids, so the
//! constants are the contract between the simulator and the runner.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use crate::secret::AppSecret;
use crate::webhooks::messaging::now_ms;
use crate::webhooks::whatsapp::{Business, Contact, Message, Status};
use crate::webhooks::{
    Delivery, RetryPolicy, SendError, SendMode, WebhookSender, feed::FeedComment, instagram, messenger,
};

/// The demo Facebook user who administers the demo Pages (the one consenting in the dialog).
pub const DEMO_USER_ID: &str = "100090000000001";
/// Their name.
pub const DEMO_USER_NAME: &str = "Dana Baker";
/// A second Page of the demo user, without Instagram.
pub const DEMO_SECOND_PAGE_ID: &str = "104857600000002";
/// Its name (non-ASCII on purpose).
pub const DEMO_SECOND_PAGE_NAME: &str = "Scifer Demo Café";
/// The demo WABA's name.
pub const DEMO_WABA_NAME: &str = "Scifer Demo Bakery";
/// The demo Meta app (echo `app_id`).
pub const DEMO_APP_ID: u64 = 900_000_000_000_001;
/// The demo Facebook Page.
pub const DEMO_PAGE_ID: &str = "104857600000001";
/// The demo Page's name.
pub const DEMO_PAGE_NAME: &str = "Scifer Demo Bakery";
/// A published post on the demo Page, for feed comments (`PAGEID_POSTID`).
pub const DEMO_POST_ID: &str = "104857600000001_200000000000001";
/// The demo Instagram professional account.
pub const DEMO_IG_ACCOUNT_ID: &str = "17841400000000001";
/// Its username.
pub const DEMO_IG_USERNAME: &str = "scifer.demo.bakery";
/// A demo Instagram media item, for comments.
pub const DEMO_IG_MEDIA_ID: &str = "17800000000000001";
/// The demo WhatsApp Business Account.
pub const DEMO_WABA_ID: &str = "102290129340398";
/// The demo WhatsApp phone number id.
pub const DEMO_PHONE_NUMBER_ID: &str = "106540352242922";
/// Its display number (digits only, as in `metadata.display_phone_number`).
pub const DEMO_DISPLAY_PHONE_NUMBER: &str = "15550001111";

/// A demo customer, reachable on all three channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoCustomer {
    /// Display name (non-ASCII on purpose for most).
    pub name: &'static str,
    /// BCP-47-ish locale of their messages.
    pub locale: &'static str,
    /// Page-scoped id on the demo Page.
    pub psid: &'static str,
    /// Instagram-scoped id on the demo IG account.
    pub igsid: &'static str,
    /// Instagram username.
    pub ig_username: &'static str,
    /// WhatsApp id (phone digits).
    pub wa_id: &'static str,
    /// Things they write, in their language.
    pub lines: &'static [&'static str],
    /// What the business answers, in the same language.
    pub reply: &'static str,
}

/// The demo customers.
pub const DEMO_CUSTOMERS: &[DemoCustomer] = &[
    DemoCustomer {
        name: "Ana Souza",
        locale: "pt-BR",
        psid: "6120000000000001",
        igsid: "1780000000000001",
        ig_username: "ana.souza",
        wa_id: "5511999990001",
        lines: &["Oi! Vocês têm pão de queijo hoje? 🧀", "Que horas vocês fecham?"],
        reply: "Temos sim! Abertos até às 18h. 😊",
    },
    DemoCustomer {
        name: "Élodie Martin",
        locale: "fr-FR",
        psid: "6120000000000002",
        igsid: "1780000000000002",
        ig_username: "elodie.martin",
        wa_id: "33612345678",
        lines: &[
            "Bonjour, est-ce que les croissants sont prêts ? 🥐",
            "Je passe vers 9h, ça marche ?",
        ],
        reply: "Bonjour Élodie ! Oui, ils sortent du four à 8h30.",
    },
    DemoCustomer {
        name: "Jürgen Weiß",
        locale: "de-DE",
        psid: "6120000000000003",
        igsid: "1780000000000003",
        ig_username: "juergen.weiss",
        wa_id: "491701234567",
        lines: &[
            "Grüß Gott! Habt ihr glutenfreies Brot?",
            "Kann ich eine Torte für Samstag bestellen? 🎂",
        ],
        reply: "Grüß Gott! Ja, jeden Tag frisch – bis später!",
    },
    DemoCustomer {
        name: "李娜",
        locale: "zh-CN",
        psid: "6120000000000004",
        igsid: "1780000000000004",
        ig_username: "li.na",
        wa_id: "8613800138000",
        lines: &["你好！今天有月饼吗？🥮", "可以送货吗？"],
        reply: "你好！有的，欢迎光临。",
    },
    DemoCustomer {
        name: "فاطمة الزهراء",
        locale: "ar-MA",
        psid: "6120000000000005",
        igsid: "1780000000000005",
        ig_username: "fatima.zahra",
        wa_id: "212612345678",
        lines: &["مرحبا، هل عندكم خبز بالزيتون؟ 🫒", "شكرا جزيلا!"],
        reply: "أهلا وسهلا! نعم، متوفر اليوم.",
    },
];

/// The demo business on WhatsApp.
pub fn demo_business() -> Business {
    Business::new(DEMO_WABA_ID, DEMO_PHONE_NUMBER_ID, DEMO_DISPLAY_PHONE_NUMBER)
}

/// One POST of the demo, with a human description for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoStep {
    /// e.g. `whatsapp: Ana Souza writes`.
    pub description: String,
    /// The payload.
    pub delivery: Delivery,
}

/// Endless, deterministic-in-shape demo traffic. Each "scene" is one customer on one channel:
/// they write, the business's reply is echoed, then delivery/read receipts (or WhatsApp
/// statuses) follow; every few scenes someone comments on a post. Ids and times are generated
/// when a scene starts, so they are fresh and current.
#[derive(Debug, Default)]
pub struct DemoScript {
    scene: usize,
    queue: VecDeque<DemoStep>,
}

impl DemoScript {
    /// A script starting at scene 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next POST to make.
    pub fn next_step(&mut self) -> DemoStep {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return step;
            }
            let scene = self.scene;
            self.scene += 1;
            self.queue.extend(scene_steps(scene));
        }
    }
}

fn step(description: String, delivery: Delivery) -> DemoStep {
    DemoStep {
        description,
        delivery,
    }
}

fn scene_steps(scene: usize) -> Vec<DemoStep> {
    let c = &DEMO_CUSTOMERS[scene % DEMO_CUSTOMERS.len()];
    let line = c.lines[(scene / DEMO_CUSTOMERS.len()) % c.lines.len()];
    let t = now_ms();
    match scene % 4 {
        0 => {
            let inbound = messenger::text(DEMO_PAGE_ID, c.psid, line).timestamp_ms(t);
            let echo = messenger::echo(DEMO_PAGE_ID, c.psid, DEMO_APP_ID, c.reply, Some("demo"))
                .timestamp_ms(t + 1500);
            let echo_mid = echo.mid_value().unwrap_or_default().to_owned();
            let reply_mid = echo_mid.clone();
            vec![
                step(format!("messenger: {} writes", c.name), inbound.into_delivery()),
                step(
                    format!("messenger: reply to {} echoed", c.name),
                    echo.into_delivery(),
                ),
                step(
                    format!("messenger: reply delivered to {}", c.name),
                    messenger::delivery(DEMO_PAGE_ID, c.psid, &[echo_mid], t + 2500)
                        .timestamp_ms(t + 2500)
                        .into_delivery(),
                ),
                step(
                    format!("messenger: {} read the reply", c.name),
                    messenger::read(DEMO_PAGE_ID, c.psid, t + 3500)
                        .timestamp_ms(t + 3500)
                        .into_delivery(),
                ),
                step(
                    format!("messenger: {} reacts ❤", c.name),
                    messenger::reaction(
                        DEMO_PAGE_ID,
                        c.psid,
                        &reply_mid,
                        &messenger::Reaction::React {
                            reaction: "love".into(),
                            emoji: "❤".into(),
                        },
                    )
                    .timestamp_ms(t + 4000)
                    .into_delivery(),
                ),
            ]
        }
        1 => {
            let inbound = instagram::text(DEMO_IG_ACCOUNT_ID, c.igsid, line).timestamp_ms(t);
            let echo =
                instagram::echo(DEMO_IG_ACCOUNT_ID, c.igsid, DEMO_APP_ID, c.reply).timestamp_ms(t + 1500);
            let echo_mid = echo.mid_value().unwrap_or_default().to_owned();
            vec![
                step(format!("instagram: {} writes", c.name), inbound.into_delivery()),
                step(
                    format!("instagram: reply to {} echoed", c.name),
                    echo.into_delivery(),
                ),
                step(
                    format!("instagram: {} saw the reply", c.name),
                    instagram::seen(DEMO_IG_ACCOUNT_ID, c.igsid, &echo_mid)
                        .timestamp_ms(t + 3000)
                        .into_delivery(),
                ),
            ]
        }
        2 => {
            let biz = demo_business();
            let secs = t / 1000;
            let contact = Contact::new(c.wa_id, c.name);
            let inbound = Message::text(c.wa_id, line).timestamp_s(secs);
            // The business's reply went out through the Send API (not simulated yet); its
            // wamid is what the statuses refer to.
            let reply = crate::ids::wamid(c.wa_id);
            vec![
                step(
                    format!("whatsapp: {} writes", c.name),
                    biz.inbound(&contact, inbound).into_delivery(),
                ),
                step(
                    format!("whatsapp: reply to {} sent", c.name),
                    biz.status(Status::sent(&reply, c.wa_id).timestamp_s(secs + 1))
                        .into_delivery(),
                ),
                step(
                    format!("whatsapp: reply to {} delivered", c.name),
                    biz.status(Status::delivered(&reply, c.wa_id).timestamp_s(secs + 2))
                        .into_delivery(),
                ),
                step(
                    format!("whatsapp: {} read the reply", c.name),
                    biz.status(Status::read(&reply, c.wa_id).timestamp_s(secs + 3))
                        .into_delivery(),
                ),
            ]
        }
        _ => vec![
            step(
                format!("feed: {} comments on a post", c.name),
                FeedComment::new(DEMO_PAGE_ID, DEMO_POST_ID, c.psid, c.name, line)
                    .into_item()
                    .into_delivery(),
            ),
            step(
                format!("instagram: {} comments on a post", c.name),
                instagram::Comment::new(DEMO_IG_ACCOUNT_ID, DEMO_IG_MEDIA_ID, c.igsid, c.ig_username, line)
                    .into_item()
                    .into_delivery(),
            ),
        ],
    }
}

/// Settings for [`run_demo`].
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where to POST.
    pub webhook_url: String,
    /// Signs every POST.
    pub app_secret: AppSecret,
    /// Pause between POSTs.
    pub interval: Duration,
    /// Stop after this many POSTs; `None` = until shutdown.
    pub count: Option<u64>,
    /// Retries per POST; defaults to [`demo_retry_policy`].
    pub retry: RetryPolicy,
    /// A Graph simulator serving next to the demo: it learns of every customer message the
    /// demo plays, so the Send APIs see open windows and the Conversations API has history.
    pub graph: Option<crate::graph::GraphSim>,
}

impl DemoConfig {
    /// Defaults: one POST per second, forever, compressed Meta retries.
    pub fn new(webhook_url: impl Into<String>, app_secret: AppSecret) -> Self {
        Self {
            webhook_url: webhook_url.into(),
            app_secret,
            interval: Duration::from_secs(1),
            count: None,
            retry: demo_retry_policy(),
            graph: None,
        }
    }
}

/// Meta's retry shape (immediate, then doubling) compressed to 30 s: long enough to ride out a
/// receiver that is still starting, short enough not to stall a sequential demo for hours.
pub fn demo_retry_policy() -> RetryPolicy {
    RetryPolicy::backoff(Duration::from_millis(250), 2, Duration::from_secs(30))
}

/// Totals of a demo run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// POSTs attempted (each possibly retried).
    pub deliveries: u64,
    /// Of those, accepted with a 200.
    pub accepted: u64,
    /// Given up on after the retry policy ran out.
    pub dropped: u64,
}

/// Play the demo until `count` POSTs were made or `shutdown` resolves.
pub async fn run_demo(
    config: DemoConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<DemoSummary, SendError> {
    let sender = WebhookSender::new(config.app_secret.clone())?;
    let mut script = DemoScript::new();
    let mut summary = DemoSummary::default();
    tokio::pin!(shutdown);
    tracing::info!(url = %config.webhook_url, interval_ms = config.interval.as_millis() as u64, count = ?config.count, "demo starting");
    loop {
        if config.count.is_some_and(|n| summary.deliveries >= n) {
            break;
        }
        let DemoStep {
            description,
            delivery,
        } = script.next_step();
        let report = tokio::select! {
            r = sender.deliver_with_retry(&config.webhook_url, &delivery, &SendMode::Valid, &config.retry) => r,
            () = &mut shutdown => break,
        };
        summary.deliveries += 1;
        if let Some(graph) = &config.graph {
            graph.observe(&delivery);
        }
        let attempts = report.attempts.len();
        if report.delivered() {
            summary.accepted += 1;
            tracing::info!(object = %delivery.object, items = delivery.item_count(), attempts, "{description}");
        } else {
            summary.dropped += 1;
            tracing::warn!(object = %delivery.object, attempts, statuses = ?report.statuses(), "dropped after retries: {description}");
        }
        tokio::select! {
            () = tokio::time::sleep(config.interval) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!(
        deliveries = summary.deliveries,
        accepted = summary.accepted,
        dropped = summary.dropped,
        "demo stopped"
    );
    Ok(summary)
}

/// A quick payload for manual pokes (`send --kind`), built around demo customer `customer`.
pub fn poke(kind: PokeKind, customer: &DemoCustomer, text: &str) -> Delivery {
    let biz = demo_business();
    match kind {
        PokeKind::MessengerText => messenger::text(DEMO_PAGE_ID, customer.psid, text).into_delivery(),
        PokeKind::MessengerImage => messenger::attachment(
            DEMO_PAGE_ID,
            customer.psid,
            messenger::AttachmentKind::Image,
            "https://scontent.xx.fbcdn.net/v/demo/croissant.jpg",
        )
        .into_delivery(),
        PokeKind::MessengerPostback => {
            messenger::postback(DEMO_PAGE_ID, customer.psid, text, "GET_STARTED").into_delivery()
        }
        PokeKind::MessengerEcho => {
            messenger::echo(DEMO_PAGE_ID, customer.psid, DEMO_APP_ID, text, None).into_delivery()
        }
        PokeKind::InstagramText => instagram::text(DEMO_IG_ACCOUNT_ID, customer.igsid, text).into_delivery(),
        PokeKind::InstagramComment => instagram::Comment::new(
            DEMO_IG_ACCOUNT_ID,
            DEMO_IG_MEDIA_ID,
            customer.igsid,
            customer.ig_username,
            text,
        )
        .into_item()
        .into_delivery(),
        PokeKind::FeedComment => {
            FeedComment::new(DEMO_PAGE_ID, DEMO_POST_ID, customer.psid, customer.name, text)
                .into_item()
                .into_delivery()
        }
        PokeKind::WhatsappText => biz
            .inbound(
                &Contact::new(customer.wa_id, customer.name),
                Message::text(customer.wa_id, text),
            )
            .into_delivery(),
        PokeKind::WhatsappImage => biz
            .inbound(
                &Contact::new(customer.wa_id, customer.name),
                Message::image(customer.wa_id, Some(text)),
            )
            .into_delivery(),
        PokeKind::WhatsappFailed => {
            let wamid = crate::ids::wamid(customer.wa_id);
            let error = crate::webhooks::whatsapp::WaError::re_engagement();
            biz.status(Status::failed(&wamid, customer.wa_id, error))
                .into_delivery()
        }
        PokeKind::Unknown => crate::webhooks::unknown::object(DEMO_PAGE_ID),
    }
}

/// Kinds accepted by `send --kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PokeKind {
    /// `messenger-text`.
    MessengerText,
    /// `messenger-image`.
    MessengerImage,
    /// `messenger-postback`.
    MessengerPostback,
    /// `messenger-echo`.
    MessengerEcho,
    /// `instagram-text`.
    InstagramText,
    /// `instagram-comment`.
    InstagramComment,
    /// `feed-comment`.
    FeedComment,
    /// `whatsapp-text`.
    WhatsappText,
    /// `whatsapp-image`.
    WhatsappImage,
    /// `whatsapp-failed`: a `failed` status with error 131047.
    WhatsappFailed,
    /// `unknown-object`.
    Unknown,
}

impl PokeKind {
    /// All kinds with their CLI names.
    pub const ALL: &'static [(&'static str, PokeKind)] = &[
        ("messenger-text", PokeKind::MessengerText),
        ("messenger-image", PokeKind::MessengerImage),
        ("messenger-postback", PokeKind::MessengerPostback),
        ("messenger-echo", PokeKind::MessengerEcho),
        ("instagram-text", PokeKind::InstagramText),
        ("instagram-comment", PokeKind::InstagramComment),
        ("feed-comment", PokeKind::FeedComment),
        ("whatsapp-text", PokeKind::WhatsappText),
        ("whatsapp-image", PokeKind::WhatsappImage),
        ("whatsapp-failed", PokeKind::WhatsappFailed),
        ("unknown-object", PokeKind::Unknown),
    ];

    /// Parse a CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, _)| *name == s).map(|(_, k)| *k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn customers_are_distinct_and_multilingual() {
        let psids: HashSet<_> = DEMO_CUSTOMERS.iter().map(|c| c.psid).collect();
        let was: HashSet<_> = DEMO_CUSTOMERS.iter().map(|c| c.wa_id).collect();
        assert_eq!(psids.len(), DEMO_CUSTOMERS.len());
        assert_eq!(was.len(), DEMO_CUSTOMERS.len());
        assert!(DEMO_CUSTOMERS.iter().filter(|c| !c.name.is_ascii()).count() >= 3);
        assert!(
            DEMO_CUSTOMERS
                .iter()
                .all(|c| c.wa_id.chars().all(|ch| ch.is_ascii_digit()))
        );
    }

    #[test]
    fn script_covers_every_channel_with_demo_ids() {
        let mut s = DemoScript::new();
        let steps: Vec<_> = (0..40).map(|_| s.next_step()).collect();
        let objects: HashSet<_> = steps.iter().map(|st| st.delivery.object.clone()).collect();
        assert_eq!(objects.len(), 3, "{objects:?}");
        for st in &steps {
            let v = st.delivery.to_value();
            let id = v["entry"][0]["id"].as_str().unwrap().to_owned();
            assert!(
                [DEMO_PAGE_ID, DEMO_IG_ACCOUNT_ID, DEMO_WABA_ID].contains(&id.as_str()),
                "{id}"
            );
        }
        // The echo and the delivery receipt of a Messenger scene refer to the same mid.
        let echo = steps[1].delivery.to_value();
        let receipt = steps[2].delivery.to_value();
        assert_eq!(echo["entry"][0]["messaging"][0]["message"]["is_echo"], true);
        assert_eq!(
            receipt["entry"][0]["messaging"][0]["delivery"]["mids"][0],
            echo["entry"][0]["messaging"][0]["message"]["mid"]
        );
        let statuses: Vec<_> = steps
            .iter()
            .filter_map(|st| {
                let v = st.delivery.to_value();
                v["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(statuses.starts_with(&["sent".to_owned(), "delivered".to_owned(), "read".to_owned()]));
    }

    #[test]
    fn every_poke_kind_builds() {
        for (name, kind) in PokeKind::ALL {
            assert_eq!(PokeKind::parse(name), Some(*kind));
            let d = poke(*kind, &DEMO_CUSTOMERS[0], "hello");
            assert_eq!(d.item_count(), 1, "{name}");
        }
        assert_eq!(PokeKind::parse("nope"), None);
    }
}
