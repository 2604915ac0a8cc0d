//! The Graph API surface: an axum server playing `graph.facebook.com` (and the
//! `www.facebook.com` OAuth dialog) over a simulated world of people, Pages, Instagram accounts
//! and WhatsApp Business Accounts. A client written against real Meta works against it by
//! changing only the base URL; wire formats follow `meta-platform.md` §3, §6, §8 and §9.
//!
//! - [`GraphSim`] owns the world; tests build it (`add_user`, `add_page`, …), inject failures
//!   (`invalidate_token`, `throttle`, `revoke_scope`, …) and inspect what happened (`calls`,
//!   `sent_messages`, `subscribed_fields`). The same steering is exposed over HTTP under
//!   `/_sim/` for a simulator running as its own process.
//! - Messaging: customers write (`customer_wrote`, `inbound_text`), which opens the windows
//!   the Send APIs enforce (§3.2–§3.4); threads have owners (Conversation Routing, §4);
//!   accepted sends are followed by the webhooks Meta sends (echo, delivery, read, WhatsApp
//!   statuses) to the target set with `set_webhook_target`, without delaying the HTTP answer.
//!   Templates, the Conversations API and expiring media URLs complete the inbox's surface.
//! - One file per endpoint group; the world (`world.rs`) is plain data and rules, and every
//!   error is a [`GraphError`] turned into HTTP in one place (`router.rs`).
//! - Token values are never logged nor recorded; [`RecordedCall`] only says which kind of
//!   token a call carried.

mod accounts;
mod admin;
mod conversations;
mod customers;
mod debug_token;
mod errors;
mod fields;
mod handover;
mod media;
mod nodes;
mod oauth;
mod outbox;
mod request;
mod router;
mod send;
mod subscriptions;
mod templates;
mod threads;
mod usage;
mod whatsapp;
mod world;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

pub use errors::{ErrorType, GraphError};
pub use media::DEFAULT_MEDIA_URL_TTL;
pub use outbox::{EmittedWebhook, RecipientBehaviour, WebhookTiming};
pub use request::DEFAULT_VERSION;
pub use subscriptions::DEFAULT_WABA_FIELDS;
pub use templates::{SimTemplate, TemplateCategory, TemplateStatus};
pub use threads::{
    AD_WINDOW_MS, HUMAN_AGENT_WINDOW_MS, INSTAGRAM_MESSAGE_CAP, PAGE_INBOX_APP_ID, STANDARD_WINDOW_MS,
    UnknownRecipients, WhatsAppReengagement,
};
pub use usage::{APP_USAGE, BUC_USAGE};
pub use world::{LONG_LIVED_SECS, SHORT_LIVED_SECS, WorldError};

use crate::AppSecret;
use crate::demo;
use world::World;

/// The simulated app's name (`application` in debug_token, `name` in subscribed_apps).
pub const SIM_APP_NAME: &str = "Scifer";

/// Settings of the simulated Meta app.
#[derive(Debug, Clone)]
pub struct GraphSimConfig {
    /// The app id (`client_id`).
    pub app_id: String,
    /// The app secret (`client_secret`, appsecret_proof key).
    pub app_secret: AppSecret,
    /// "Require App Secret" in the App Dashboard: token-bearing Graph calls without
    /// `appsecret_proof` are refused (OAuth and debug_token calls are exempt).
    pub require_appsecret_proof: bool,
    /// How long a dialog code can be exchanged.
    pub code_ttl: Duration,
}

impl GraphSimConfig {
    /// Defaults: appsecret_proof required, codes valid 10 minutes.
    pub fn new(app_id: impl Into<String>, app_secret: AppSecret) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret,
            require_appsecret_proof: true,
            code_ttl: Duration::from_secs(600),
        }
    }
}

/// A person in the simulated world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// Numeric user id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A Page in the simulated world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPage {
    /// Numeric Page id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A WhatsApp Business Account in the simulated world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimWaba {
    /// Numeric WABA id.
    pub id: String,
}

/// One Graph request as the simulator saw it, minus anything secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedCall {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// Path without the query, version included (`/v25.0/me/accounts`).
    pub path: String,
    /// Whether an `appsecret_proof` parameter was present (right or wrong).
    pub had_appsecret_proof: bool,
    /// `USER`, `PAGE`, `SYSTEM_USER` or `APP` for a token the simulator issued (valid or not);
    /// `None` without a token or with one it never issued.
    pub token_kind: Option<String>,
}

/// A message a Send API accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    /// The Page, Instagram account or phone number id that sent it.
    pub sender_object_id: String,
    /// PSID / IGSID (or `user_ref`, `comment_id`…) or the WhatsApp `to`.
    pub recipient: String,
    /// The request body as JSON (form-encoded sends are decoded).
    pub body: serde_json::Value,
    /// The id returned (`m_…`, `aWdf…`, `wamid.…`).
    pub message_id: String,
}

/// A Conversation Routing call (`pass_thread_control`, `take_thread_control`,
/// `request_thread_control`, `release_thread_control`) Meta accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadControlCall {
    /// The Page called on (an Instagram thread is still routed through its Page).
    pub page_id: String,
    /// The endpoint's name, e.g. `pass_thread_control`.
    pub action: String,
    /// PSID or IGSID.
    pub recipient: String,
    /// `pass_thread_control`'s target app.
    pub target_app_id: Option<String>,
    /// The `metadata` the caller sent along.
    pub metadata: Option<String>,
}

struct Inner {
    world: Mutex<World>,
    /// `x-fb-rev`, fixed per simulator like a deployed revision.
    rev: String,
    /// Webhooks sent so far (outside the world's lock: tasks record them as they go).
    emitted: Mutex<Vec<EmittedWebhook>>,
    /// Webhook chains queued or being sent.
    in_flight: watch::Sender<usize>,
}

/// The simulated Graph API. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct GraphSim {
    inner: Arc<Inner>,
}

impl fmt::Debug for GraphSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphSim")
            .field("app_id", &self.lock().config.app_id)
            .finish_non_exhaustive()
    }
}

/// Scopes the demo user grants when asked.
pub const DEMO_USER_SCOPES: &[&str] = &[
    "public_profile",
    "email",
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "pages_read_engagement",
    "pages_manage_posts",
    "instagram_basic",
    "instagram_manage_messages",
    "instagram_manage_comments",
    "instagram_content_publish",
    "business_management",
    "whatsapp_business_management",
    "whatsapp_business_messaging",
];

/// Scopes of the demo WABA's system-user token.
pub const DEMO_SYSTEM_USER_SCOPES: &[&str] = &["whatsapp_business_management", "whatsapp_business_messaging"];

fn owned(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

impl GraphSim {
    /// An empty world.
    pub fn new(config: GraphSimConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                world: Mutex::new(World::new(config)),
                rev: world::digits("10", 10),
                emitted: Mutex::new(Vec::new()),
                in_flight: watch::Sender::new(0),
            }),
        }
    }

    /// The demo world (`crate::demo` ids): one user (the consenting one) administering the demo
    /// Page with its Instagram account and a second Page without Instagram, and the demo WABA
    /// with its phone number and a system-user token ([`Self::demo_system_user_token`]). The
    /// demo customers' IGSIDs are known, so `/me/messages` to them goes out on Instagram; they
    /// wrote on every channel when the world was created (windows open for 24 h) and have
    /// names. The WABA has the templates `order_update` (en_US, 1 body parameter) and
    /// `hello_world` (en_US, none), approved, and `spring_sale` (en_US, marketing), pending.
    /// Recipients nobody heard of are treated as inside the window
    /// ([`UnknownRecipients::InWindow`]): the demo's customers write through a separate
    /// webhook process the Graph side never sees.
    pub fn with_demo_world(config: GraphSimConfig) -> Self {
        let sim = Self::new(config);
        if let Err(e) = seed_demo(&mut sim.lock()) {
            // Fixed ids into an empty world cannot collide; this would be a bug in seed_demo.
            tracing::error!(error = %e, "seeding the demo world failed");
        }
        sim
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock (a test helper misused) leaves plain data behind;
        // later callers may keep using it.
        self.inner.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The routes: Graph endpoints under any `/v<N>.0/` prefix (or none), plus `/_sim/`.
    pub fn router(&self) -> axum::Router {
        router::router(self.clone())
    }

    /// Serve on `listener` until `shutdown` resolves. Media URLs point at this listener unless
    /// [`Self::set_public_url`] said otherwise.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            let mut w = self.lock();
            if w.media.public_url.is_none() {
                let host = if addr.ip().is_unspecified() {
                    std::net::IpAddr::from([127, 0, 0, 1])
                } else {
                    addr.ip()
                };
                w.media.public_url = Some(format!("http://{}", std::net::SocketAddr::new(host, addr.port())));
            }
        }
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// The app id.
    pub fn app_id(&self) -> String {
        self.lock().config.app_id.clone()
    }

    // ---------- world building ----------

    /// Add a person who would grant `scopes` in the dialog; they become the consenting user.
    pub fn add_user(&self, name: &str, scopes: &[&str]) -> SimUser {
        let id = self.lock().add_user(None, name, scopes);
        SimUser {
            id,
            name: name.to_owned(),
        }
    }

    /// Choose who consents in the dialog.
    ///
    /// # Panics
    /// On an unknown user id (a mistake in the test).
    pub fn set_consenting_user(&self, user_id: &str) {
        must(self.lock().set_consenting_user(user_id), "set_consenting_user");
    }

    /// The id of the user who consents in the dialog (the last added, or the one chosen with
    /// [`Self::set_consenting_user`]; in the demo world `demo::DEMO_USER_ID`).
    ///
    /// # Panics
    /// When the world has no user yet.
    pub fn consenting_user_id(&self) -> String {
        let w = self.lock();
        must(
            w.consenting_user()
                .map(str::to_owned)
                .ok_or(WorldError::NoConsentingUser),
            "consenting_user_id",
        )
    }

    /// Add a Page the user administers (all tasks, including MODERATE and MANAGE).
    ///
    /// # Panics
    /// On an unknown user id.
    pub fn add_page(&self, user_id: &str, name: &str) -> SimPage {
        let id = must(self.lock().add_page(None, user_id, name), "add_page");
        SimPage {
            id,
            name: name.to_owned(),
        }
    }

    /// Link a new Instagram professional account to a Page; returns its id.
    ///
    /// # Panics
    /// On an unknown Page id.
    pub fn link_instagram(&self, page_id: &str, username: &str) -> String {
        must(
            self.lock().link_instagram(None, page_id, username),
            "link_instagram",
        )
    }

    /// Declare `igsid` an Instagram-scoped id of `ig_account_id`, so `/me/messages` with the
    /// Page token addressed to it is an Instagram send.
    ///
    /// # Panics
    /// On an unknown Instagram account id.
    pub fn add_instagram_user(&self, ig_account_id: &str, igsid: &str) {
        must(
            self.lock().add_instagram_user(ig_account_id, igsid),
            "add_instagram_user",
        );
    }

    /// Add a WABA.
    pub fn add_waba(&self, name: &str) -> SimWaba {
        SimWaba {
            id: self.lock().add_waba(None, name),
        }
    }

    /// Add a phone number to a WABA; returns its id.
    ///
    /// # Panics
    /// On an unknown WABA id.
    pub fn add_phone_number(&self, waba_id: &str, display: &str, verified_name: &str) -> String {
        must(
            self.lock()
                .add_phone_number(None, waba_id, display, verified_name),
            "add_phone_number",
        )
    }

    /// A non-expiring `SYSTEM_USER` token on the WABA (and its phone numbers).
    ///
    /// # Panics
    /// On an unknown WABA id.
    pub fn issue_system_user_token(&self, waba_id: &str, scopes: &[&str]) -> String {
        must(
            self.lock().issue_system_user_token(waba_id, &owned(scopes)),
            "issue_system_user_token",
        )
    }

    /// A user token (the user grants `scopes` on the spot): short-lived (~1.5 h) or long-lived
    /// (~60 days).
    ///
    /// # Panics
    /// On an unknown user id.
    pub fn issue_user_token(&self, user_id: &str, scopes: &[&str], long_lived: bool) -> String {
        must(
            self.lock().issue_user_token(user_id, &owned(scopes), long_lived),
            "issue_user_token",
        )
    }

    /// A code as WhatsApp Embedded Signup hands to the browser: exchanging it at
    /// `oauth/access_token` without `redirect_uri` yields a system-user token for the WABA.
    ///
    /// # Panics
    /// On an unknown WABA id.
    pub fn embedded_signup_code(&self, waba_id: &str, scopes: &[&str]) -> String {
        must(
            self.lock().embedded_signup_code(waba_id, &owned(scopes)),
            "embedded_signup_code",
        )
    }

    /// The demo world's system-user token (only from [`Self::with_demo_world`]).
    pub fn demo_system_user_token(&self) -> Option<String> {
        self.lock().demo_system_user_token.clone()
    }

    // ---------- error injection ----------

    /// Every later call with the token fails with 190/`subcode` (460 password changed, 463
    /// expired, 467 logged out…); debug_token reports it invalid. Page tokens derived from an
    /// invalidated user token die with it.
    ///
    /// # Panics
    /// On a token the simulator never issued.
    pub fn invalidate_token(&self, token: &str, subcode: u32) {
        must(self.lock().invalidate_token(token, subcode), "invalidate_token");
    }

    /// Invalidate every Page token issued for the Page.
    pub fn invalidate_tokens_of_page(&self, page_id: &str, subcode: u32) {
        self.lock().invalidate_tokens_of_page(page_id, subcode);
    }

    /// The owner withdraws `scope`: every token derived from them loses it (debug_token stops
    /// listing it; calls needing it fail with a permission error). `owner` may be a user id, a
    /// system user id, a WABA id (its system user) or a token (its owner). Consenting again in
    /// the dialog grants it back, as on Facebook.
    ///
    /// # Panics
    /// When `owner` names nobody.
    pub fn revoke_scope(&self, owner: &str, scope: &str) {
        must(self.lock().revoke_scope(owner, scope), "revoke_scope");
    }

    /// The next `calls` calls (`None` = until cleared) touching the object — as the path's node,
    /// the token's Page or user, or a phone number's WABA — fail with `code` (4 hits every
    /// call), HTTP 400, with usage headers whose `estimated_time_to_regain_access` is
    /// `minutes_to_regain`.
    pub fn throttle(&self, object_id: &str, code: u32, minutes_to_regain: u32, calls: Option<u32>) {
        self.lock()
            .usage
            .throttle(object_id, code, minutes_to_regain, calls);
    }

    /// Remove the throttle on the object.
    pub fn clear_throttle(&self, object_id: &str) {
        self.lock().usage.clear(object_id);
    }

    /// Report usage on every response from now on: `None` → `X-App-Usage`; `Some(id)` → an
    /// `X-Business-Use-Case-Usage` entry typed by the object (`pages`, `instagram`,
    /// `whatsapp_business_management`).
    pub fn set_usage(&self, object_id: Option<&str>, call_count_pct: u32) {
        let mut w = self.lock();
        let ty = object_id
            .and_then(|id| w.resolve(id))
            .map_or("pages", |n| n.usage_type());
        w.usage.set(object_id, ty, call_count_pct);
    }

    /// Meta dropping the app's webhook subscription on a Page or WABA.
    ///
    /// # Panics
    /// On an id that is neither.
    pub fn drop_subscription(&self, object_id: &str) {
        must(self.lock().drop_subscription(object_id), "drop_subscription");
    }

    /// Make the dialog simulate the user cancelling (`error=access_denied`).
    pub fn set_dialog_denies(&self, denies: bool) {
        self.lock().dialog_denies = denies;
    }

    /// Move the simulated clock forward (expires codes and tokens).
    pub fn advance_clock(&self, by: Duration) {
        self.lock().advance_clock(by);
    }

    // ---------- inspection ----------

    /// The app's webhook fields on a Page or WABA; `None` = not subscribed.
    pub fn subscribed_fields(&self, object_id: &str) -> Option<Vec<String>> {
        self.lock().subscribed_fields(object_id)
    }

    /// Every token the simulator has issued (user, Page, system user, `client_credentials`),
    /// oldest first, for tests that check no token leaks into logs, storage or events. The
    /// literal `APP_ID|APP_SECRET` is not issued and not listed.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued_token_values()
    }

    /// Every Graph call so far (not `/_sim/`), oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// Every message the Send APIs accepted, oldest first (sender actions and WhatsApp
    /// read receipts are not messages and are not listed).
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Every thread-control call Meta accepted, oldest first (refused ones are only in
    /// [`Self::calls`]).
    pub fn thread_control_calls(&self) -> Vec<ThreadControlCall> {
        self.lock().thread_control.clone()
    }
}

pub(crate) fn must<T>(r: Result<T, WorldError>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("GraphSim::{what}: {e}"))
}

fn seed_demo(w: &mut World) -> Result<(), WorldError> {
    let user = w.add_user(Some(demo::DEMO_USER_ID), demo::DEMO_USER_NAME, DEMO_USER_SCOPES);
    w.add_page(Some(demo::DEMO_PAGE_ID), &user, demo::DEMO_PAGE_NAME)?;
    w.link_instagram(
        Some(demo::DEMO_IG_ACCOUNT_ID),
        demo::DEMO_PAGE_ID,
        demo::DEMO_IG_USERNAME,
    )?;
    w.add_page(
        Some(demo::DEMO_SECOND_PAGE_ID),
        &user,
        demo::DEMO_SECOND_PAGE_NAME,
    )?;
    w.add_waba(Some(demo::DEMO_WABA_ID), demo::DEMO_WABA_NAME);
    w.add_phone_number(
        Some(demo::DEMO_PHONE_NUMBER_ID),
        demo::DEMO_WABA_ID,
        demo::DEMO_DISPLAY_PHONE_NUMBER,
        demo::DEMO_PAGE_NAME,
    )?;
    let token = w.issue_system_user_token(demo::DEMO_WABA_ID, &owned(DEMO_SYSTEM_USER_SCOPES))?;
    w.demo_system_user_token = Some(token);
    let now = w.now_ms();
    for c in demo::DEMO_CUSTOMERS {
        w.add_instagram_user(demo::DEMO_IG_ACCOUNT_ID, c.igsid)?;
        for (object, customer) in [
            (demo::DEMO_PAGE_ID, c.psid),
            (demo::DEMO_IG_ACCOUNT_ID, c.igsid),
            (demo::DEMO_PHONE_NUMBER_ID, c.wa_id),
        ] {
            w.customer_wrote(object, customer, now, false)?;
        }
        w.customer_names.insert(c.psid.to_owned(), c.name.to_owned());
        w.customer_names.insert(c.wa_id.to_owned(), c.name.to_owned());
        w.customer_names
            .insert(c.igsid.to_owned(), c.ig_username.to_owned());
    }
    w.threads.unknown_recipients = UnknownRecipients::InWindow;
    for (name, category, status, params) in [
        (
            "order_update",
            TemplateCategory::Utility,
            TemplateStatus::Approved,
            1,
        ),
        (
            "hello_world",
            TemplateCategory::Utility,
            TemplateStatus::Approved,
            0,
        ),
        (
            "spring_sale",
            TemplateCategory::Marketing,
            TemplateStatus::Pending,
            1,
        ),
    ] {
        w.add_template(demo::DEMO_WABA_ID, name, "en_US", category, status, params)?;
    }
    Ok(())
}
