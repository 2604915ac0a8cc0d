//! The simulated world behind the Graph surface: people, Pages, Instagram accounts, WhatsApp
//! Business Accounts, and the codes and tokens issued for them. Plain data and rules, no HTTP:
//! the handlers only translate requests into calls on [`World`].

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};

use super::GraphSimConfig;
use super::errors::GraphError;
use super::media::MediaStore;
use super::outbox::Outbox;
use super::templates::Templates;
use super::threads::Threads;
use super::usage::Usage;
use super::{RecordedCall, SentMessage, ThreadControlCall};

/// `expires_in` of a short-lived user token from the code exchange (about 1.5 h).
pub const SHORT_LIVED_SECS: i64 = 5400;
/// `expires_in` of a long-lived user token (~60 days), the value Meta reports.
pub const LONG_LIVED_SECS: i64 = 5_183_944;
/// Data access expires 90 days after the user last consented.
pub const DATA_ACCESS_SECS: i64 = 90 * 24 * 3600;
/// Meta always grants this one, whatever the app asked for.
pub const PUBLIC_PROFILE: &str = "public_profile";
/// The tasks a full Page admin has (what `me/accounts` lists in `tasks`).
pub const ADMIN_TASKS: &[&str] = &[
    "ANALYZE",
    "ADVERTISE",
    "MESSAGING",
    "MODERATE",
    "CREATE_CONTENT",
    "MANAGE",
];

/// The four token types `debug_token` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A person's token from Facebook Login.
    User,
    /// A Page token, derived from a user token.
    Page,
    /// A Business Manager system user (or Embedded Signup business integration) token.
    SystemUser,
    /// `APP_ID|APP_SECRET` or a `client_credentials` token.
    App,
}

impl TokenKind {
    /// The `type` string of `debug_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Page => "PAGE",
            Self::SystemUser => "SYSTEM_USER",
            Self::App => "APP",
        }
    }
}

type TokenId = usize;

/// One issued token. Deliberately not `Debug`: `value` is the secret.
struct TokenRecord {
    value: String,
    kind: TokenKind,
    /// User id, system user id or app id.
    owner: String,
    page_id: Option<String>,
    scopes: Vec<String>,
    issued_at: i64,
    /// 0 = never.
    expires_at: i64,
    /// 0 = not applicable.
    data_access_expires_at: i64,
    invalidated: Option<u32>,
    /// The user token a Page token was derived from: invalidating the user's session (password
    /// change, logout) kills the Page tokens too, as on Meta. Expiry does not propagate, which is
    /// the point of Page tokens from a long-lived user token.
    parent: Option<TokenId>,
}

/// What a request's valid token may do, with the scopes still granted right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// `None` for the literal `APP_ID|APP_SECRET`.
    pub id: Option<usize>,
    /// Token type.
    pub kind: TokenKind,
    /// User id, system user id or app id.
    pub owner: String,
    /// For Page tokens.
    pub page_id: Option<String>,
    /// For system user tokens: the WABAs it was issued for.
    pub waba_ids: Vec<String>,
    /// Effective scopes: issued scopes still granted by the owner.
    pub scopes: BTreeSet<String>,
}

impl Auth {
    /// Whether the scope is (still) granted.
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

/// `debug_token`'s view of a token, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Token type.
    pub kind: TokenKind,
    /// User id, system user id or app id.
    pub owner: String,
    /// For Page tokens.
    pub page_id: Option<String>,
    /// For system user tokens.
    pub waba_ids: Vec<String>,
    /// Effective scopes.
    pub scopes: Vec<String>,
    /// Unix seconds (simulated clock).
    pub issued_at: i64,
    /// 0 = never.
    pub expires_at: i64,
    /// 0 = not applicable.
    pub data_access_expires_at: i64,
    /// `Some((subcode, message))` when the token no longer works.
    pub invalid: Option<(u32, String)>,
}

/// A person on Facebook.
#[derive(Debug, Clone)]
pub struct User {
    /// Numeric id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What they would grant if asked.
    pub grantable: Vec<String>,
    /// What they have granted the app (shrinks on revocation, grows on re-consent).
    pub granted: BTreeSet<String>,
}

/// A Facebook Page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Numeric id.
    pub id: String,
    /// Page name.
    pub name: String,
    /// Users with full tasks on it.
    pub managers: Vec<String>,
    /// Linked Instagram professional account.
    pub instagram: Option<String>,
    /// The app's webhook fields on this Page; `None` = not subscribed.
    pub subscription: Option<Vec<String>>,
}

/// An Instagram professional account linked to a Page.
#[derive(Debug, Clone)]
pub struct IgAccount {
    /// Numeric id (`1784…`).
    pub id: String,
    /// Username.
    pub username: String,
    /// The Page it is linked to.
    pub page_id: String,
}

/// A WhatsApp Business Account.
#[derive(Debug, Clone)]
pub struct Waba {
    /// Numeric id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The app's subscription; `None` = not subscribed.
    pub subscription: Option<WabaSubscription>,
}

/// The app's subscription on a WABA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WabaSubscription {
    /// Webhook fields (the app-level defaults unless given).
    pub fields: Vec<String>,
    /// Per-WABA callback override.
    pub override_callback_uri: Option<String>,
}

/// A WhatsApp business phone number.
#[derive(Debug, Clone)]
pub struct Phone {
    /// Numeric id (`PHONE_NUMBER_ID`).
    pub id: String,
    /// Owning WABA.
    pub waba_id: String,
    /// `display_phone_number`.
    pub display: String,
    /// `verified_name`.
    pub verified_name: String,
    /// `quality_rating`.
    pub quality_rating: String,
}

/// A Business Manager system user; one per WABA is enough for the simulator.
#[derive(Debug, Clone)]
pub struct SystemUser {
    /// Numeric id.
    pub id: String,
    /// Name.
    pub name: String,
    /// WABAs it has assets on.
    pub wabas: Vec<String>,
    /// Scopes it holds.
    pub granted: BTreeSet<String>,
}

/// What an id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A person.
    User(String),
    /// A Page.
    Page(String),
    /// An Instagram account.
    Ig(String),
    /// A WABA.
    Waba(String),
    /// A WhatsApp phone number.
    Phone(String),
    /// A system user.
    SystemUser(String),
    /// A Messenger or Instagram message (`m_…`, `aWdf…`).
    Message(String),
    /// A Messenger or Instagram conversation (`t_…`, `aWdf…`).
    Conversation(String),
    /// An uploaded or received WhatsApp media item.
    Media(String),
}

impl Node {
    /// The id.
    pub fn id(&self) -> &str {
        match self {
            Self::User(id)
            | Self::Page(id)
            | Self::Ig(id)
            | Self::Waba(id)
            | Self::Phone(id)
            | Self::SystemUser(id)
            | Self::Message(id)
            | Self::Conversation(id)
            | Self::Media(id) => id,
        }
    }

    /// The node type name Graph errors mention.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::User(_) | Self::SystemUser(_) => "User",
            Self::Page(_) => "Page",
            Self::Ig(_) => "ShadowIGUser",
            Self::Waba(_) => "WhatsAppBusinessAccount",
            Self::Phone(_) => "WhatsAppBusinessPhoneNumber",
            Self::Message(_) => "Message",
            Self::Conversation(_) => "UnifiedThread",
            Self::Media(_) => "WhatsAppBusinessMedia",
        }
    }

    /// `type` of an `X-Business-Use-Case-Usage` entry for this object.
    pub fn usage_type(&self) -> &'static str {
        match self {
            Self::Ig(_) => "instagram",
            Self::Waba(_) | Self::Phone(_) | Self::Media(_) => "whatsapp_business_management",
            Self::User(_)
            | Self::Page(_)
            | Self::SystemUser(_)
            | Self::Message(_)
            | Self::Conversation(_) => "pages",
        }
    }
}

/// What a code grants when exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeGrant {
    /// Facebook Login dialog.
    Login {
        /// Must be repeated identically at the exchange.
        redirect_uri: String,
        /// Who consented.
        user_id: String,
        /// What they granted.
        scopes: Vec<String>,
    },
    /// WhatsApp Embedded Signup (no redirect_uri at the exchange).
    EmbeddedSignup {
        /// The WABA the business shared.
        waba_id: String,
        /// Scopes of the business integration token.
        scopes: Vec<String>,
    },
}

struct Code {
    grant: CodeGrant,
    issued_at: i64,
    used: bool,
}

/// Misuse of the world-building API (an id that does not exist). Never carries a token value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// No such object.
    #[error("unknown {what} `{id}`")]
    Unknown {
        /// Kind of object.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// No such token (its value is not repeated).
    #[error("unknown token")]
    UnknownToken,
    /// The dialog has nobody to consent.
    #[error("no user is logged in to the simulator (add_user first)")]
    NoConsentingUser,
}

fn unknown(what: &'static str, id: &str) -> WorldError {
    WorldError::Unknown {
        what,
        id: id.to_owned(),
    }
}

/// The simulated world. Not `Debug`: it holds token values.
pub struct World {
    pub(crate) config: GraphSimConfig,
    clock_offset: Duration,
    users: Vec<User>,
    pages: Vec<Page>,
    igs: Vec<IgAccount>,
    wabas: Vec<Waba>,
    phones: Vec<Phone>,
    system_users: Vec<SystemUser>,
    tokens: Vec<TokenRecord>,
    by_value: HashMap<String, TokenId>,
    page_tokens: HashMap<(TokenId, String), TokenId>,
    codes: HashMap<String, Code>,
    consenting_user: Option<String>,
    pub(crate) dialog_denies: bool,
    /// Instagram-scoped ids → IG account, so `/me/messages` with a Page token can tell an
    /// Instagram recipient from a Messenger one (Meta knows which namespace an id is in).
    igsids: HashMap<String, String>,
    pub(crate) usage: Usage,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) sent: Vec<SentMessage>,
    pub(crate) thread_control: Vec<ThreadControlCall>,
    pub(crate) demo_system_user_token: Option<String>,
    /// Who wrote when, thread owners and conversation history (windows, routing, backfill).
    pub(crate) threads: Threads,
    /// WhatsApp message templates of every WABA.
    pub(crate) templates: Templates,
    /// Attachment bytes and their expiring URLs.
    pub(crate) media: MediaStore,
    /// Where and how the webhooks that follow sends go.
    pub(crate) outbox: Outbox,
    /// Display names of customers (conversation participants, WhatsApp contact cards).
    pub(crate) customer_names: HashMap<String, String>,
}

impl World {
    /// An empty world for `config`'s app.
    pub fn new(config: GraphSimConfig) -> Self {
        Self {
            config,
            clock_offset: Duration::ZERO,
            users: Vec::new(),
            pages: Vec::new(),
            igs: Vec::new(),
            wabas: Vec::new(),
            phones: Vec::new(),
            system_users: Vec::new(),
            tokens: Vec::new(),
            by_value: HashMap::new(),
            page_tokens: HashMap::new(),
            codes: HashMap::new(),
            consenting_user: None,
            dialog_denies: false,
            igsids: HashMap::new(),
            usage: Usage::default(),
            calls: Vec::new(),
            sent: Vec::new(),
            thread_control: Vec::new(),
            demo_system_user_token: None,
            threads: Threads::default(),
            templates: Templates::default(),
            media: MediaStore::default(),
            outbox: Outbox::default(),
            customer_names: HashMap::new(),
        }
    }

    /// Simulated unix time in seconds.
    pub fn now(&self) -> i64 {
        let t = SystemTime::now() + self.clock_offset;
        t.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Simulated unix time in milliseconds (Messenger timestamps, windows, URL expiry).
    pub fn now_ms(&self) -> i64 {
        let t = SystemTime::now() + self.clock_offset;
        t.duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    /// Move the simulated clock forward.
    pub fn advance_clock(&mut self, by: Duration) {
        self.clock_offset += by;
    }

    // ---------- building ----------

    /// Add a person who would grant `scopes`; they become the consenting user.
    pub fn add_user(&mut self, id: Option<&str>, name: &str, scopes: &[&str]) -> String {
        let id = id.map_or_else(|| digits("1000", 15), str::to_owned);
        self.users.push(User {
            id: id.clone(),
            name: name.to_owned(),
            grantable: scopes.iter().map(|s| (*s).to_owned()).collect(),
            granted: BTreeSet::new(),
        });
        self.consenting_user = Some(id.clone());
        id
    }

    /// Choose who clicks "Continue" in the dialog.
    pub fn set_consenting_user(&mut self, user_id: &str) -> Result<(), WorldError> {
        self.user(user_id).ok_or_else(|| unknown("user", user_id))?;
        self.consenting_user = Some(user_id.to_owned());
        Ok(())
    }

    /// Who consents in the dialog.
    pub fn consenting_user(&self) -> Option<&str> {
        self.consenting_user.as_deref()
    }

    /// Add a Page the user administers.
    pub fn add_page(&mut self, id: Option<&str>, user_id: &str, name: &str) -> Result<String, WorldError> {
        self.user(user_id).ok_or_else(|| unknown("user", user_id))?;
        let id = id.map_or_else(|| digits("1", 15), str::to_owned);
        self.pages.push(Page {
            id: id.clone(),
            name: name.to_owned(),
            managers: vec![user_id.to_owned()],
            instagram: None,
            subscription: None,
        });
        Ok(id)
    }

    /// Link a new Instagram professional account to a Page.
    pub fn link_instagram(
        &mut self,
        id: Option<&str>,
        page_id: &str,
        username: &str,
    ) -> Result<String, WorldError> {
        let id = id.map_or_else(|| digits("1784", 17), str::to_owned);
        let page = self.page_mut(page_id).ok_or_else(|| unknown("page", page_id))?;
        page.instagram = Some(id.clone());
        self.igs.push(IgAccount {
            id: id.clone(),
            username: username.to_owned(),
            page_id: page_id.to_owned(),
        });
        Ok(id)
    }

    /// Remember that `igsid` is an Instagram-scoped id of `ig_id`'s conversations.
    pub fn add_instagram_user(&mut self, ig_id: &str, igsid: &str) -> Result<(), WorldError> {
        self.ig(ig_id)
            .ok_or_else(|| unknown("instagram account", ig_id))?;
        self.igsids.insert(igsid.to_owned(), ig_id.to_owned());
        Ok(())
    }

    /// The IG account an Instagram-scoped id belongs to.
    pub fn ig_of_igsid(&self, igsid: &str) -> Option<&str> {
        self.igsids.get(igsid).map(String::as_str)
    }

    /// Add a WABA.
    pub fn add_waba(&mut self, id: Option<&str>, name: &str) -> String {
        let id = id.map_or_else(|| digits("10", 15), str::to_owned);
        self.wabas.push(Waba {
            id: id.clone(),
            name: name.to_owned(),
            subscription: None,
        });
        id
    }

    /// Add a phone number to a WABA.
    pub fn add_phone_number(
        &mut self,
        id: Option<&str>,
        waba_id: &str,
        display: &str,
        verified_name: &str,
    ) -> Result<String, WorldError> {
        self.waba(waba_id).ok_or_else(|| unknown("waba", waba_id))?;
        let id = id.map_or_else(|| digits("1", 15), str::to_owned);
        self.phones.push(Phone {
            id: id.clone(),
            waba_id: waba_id.to_owned(),
            display: display.to_owned(),
            verified_name: verified_name.to_owned(),
            quality_rating: "GREEN".to_owned(),
        });
        Ok(id)
    }

    /// A non-expiring system user token for a WABA.
    pub fn issue_system_user_token(
        &mut self,
        waba_id: &str,
        scopes: &[String],
    ) -> Result<String, WorldError> {
        self.waba(waba_id).ok_or_else(|| unknown("waba", waba_id))?;
        let su_id = self.system_user_for(waba_id);
        if let Some(su) = self.system_users.iter_mut().find(|s| s.id == su_id) {
            su.granted.extend(scopes.iter().cloned());
        }
        let now = self.now();
        let (_, value) = self.mint(TokenRecord {
            value: String::new(),
            kind: TokenKind::SystemUser,
            owner: su_id,
            page_id: None,
            scopes: scopes.to_vec(),
            issued_at: now,
            expires_at: 0,
            data_access_expires_at: 0,
            invalidated: None,
            parent: None,
        });
        Ok(value)
    }

    fn system_user_for(&mut self, waba_id: &str) -> String {
        if let Some(su) = self
            .system_users
            .iter()
            .find(|s| s.wabas.iter().any(|w| w == waba_id))
        {
            return su.id.clone();
        }
        let id = digits("6100", 15);
        self.system_users.push(SystemUser {
            id: id.clone(),
            name: "Scifer System User".to_owned(),
            wabas: vec![waba_id.to_owned()],
            granted: BTreeSet::new(),
        });
        id
    }

    /// A user token with `scopes` (granted on the spot), short- or long-lived.
    pub fn issue_user_token(
        &mut self,
        user_id: &str,
        scopes: &[String],
        long_lived: bool,
    ) -> Result<String, WorldError> {
        let user = self.user_mut(user_id).ok_or_else(|| unknown("user", user_id))?;
        user.granted.extend(scopes.iter().cloned());
        Ok(self.mint_user_token(user_id, scopes.to_vec(), long_lived).1)
    }

    fn mint_user_token(&mut self, user_id: &str, scopes: Vec<String>, long_lived: bool) -> (TokenId, String) {
        let now = self.now();
        let life = if long_lived {
            LONG_LIVED_SECS
        } else {
            SHORT_LIVED_SECS
        };
        self.mint(TokenRecord {
            value: String::new(),
            kind: TokenKind::User,
            owner: user_id.to_owned(),
            page_id: None,
            scopes,
            issued_at: now,
            expires_at: now + life,
            data_access_expires_at: now + DATA_ACCESS_SECS,
            invalidated: None,
            parent: None,
        })
    }

    fn mint(&mut self, mut rec: TokenRecord) -> (TokenId, String) {
        let value = if rec.kind == TokenKind::App {
            format!("{}|{}", self.config.app_id, random_alnum(27))
        } else {
            format!("EAAG{}", random_alnum(176))
        };
        rec.value = value.clone();
        let id = self.tokens.len();
        self.tokens.push(rec);
        self.by_value.insert(value.clone(), id);
        (id, value)
    }

    /// Every token value issued so far, oldest first.
    pub fn issued_token_values(&self) -> Vec<String> {
        self.tokens.iter().map(|r| r.value.clone()).collect()
    }

    /// The value of an issued token (to hand a Page token back to its own Page).
    pub fn token_value(&self, id: usize) -> Option<String> {
        self.tokens.get(id).map(|r| r.value.clone())
    }

    /// A `client_credentials` app token.
    pub fn issue_app_token(&mut self) -> String {
        let now = self.now();
        let app_id = self.config.app_id.clone();
        self.mint(TokenRecord {
            value: String::new(),
            kind: TokenKind::App,
            owner: app_id,
            page_id: None,
            scopes: Vec::new(),
            issued_at: now,
            expires_at: 0,
            data_access_expires_at: 0,
            invalidated: None,
            parent: None,
        })
        .1
    }

    /// The Page token a user token yields for `page_id` (stable per user token and Page). From a
    /// long-lived user token it never expires; from a short-lived one it expires with it.
    pub fn page_token(&mut self, user_token: usize, page_id: &str) -> String {
        if let Some(&id) = self.page_tokens.get(&(user_token, page_id.to_owned())) {
            return self.tokens[id].value.clone();
        }
        let parent = &self.tokens[user_token];
        let long_lived = parent.expires_at == 0 || parent.expires_at - parent.issued_at > SHORT_LIVED_SECS;
        let rec = TokenRecord {
            value: String::new(),
            kind: TokenKind::Page,
            owner: parent.owner.clone(),
            page_id: Some(page_id.to_owned()),
            scopes: parent.scopes.clone(),
            issued_at: self.now(),
            expires_at: if long_lived { 0 } else { parent.expires_at },
            data_access_expires_at: parent.data_access_expires_at,
            invalidated: None,
            parent: Some(user_token),
        };
        let (id, value) = self.mint(rec);
        self.page_tokens.insert((user_token, page_id.to_owned()), id);
        value
    }

    /// A long-lived user token for a valid user token (`fb_exchange_token`).
    pub fn exchange_for_long_lived(&mut self, auth: &Auth) -> Result<String, GraphError> {
        let Some(id) = auth.id.filter(|_| auth.kind == TokenKind::User) else {
            return Err(GraphError::new(190, "Invalid OAuth access token."));
        };
        let scopes = self.tokens[id].scopes.clone();
        Ok(self.mint_user_token(&auth.owner, scopes, true).1)
    }

    // ---------- codes ----------

    /// The dialog: the consenting user grants `requested ∩ grantable` (plus `public_profile`);
    /// `None` = everything they can grant (Facebook Login for Business `config_id`).
    pub fn consent(
        &mut self,
        redirect_uri: &str,
        requested: Option<&[String]>,
    ) -> Result<String, WorldError> {
        let user_id = self.consenting_user.clone().ok_or(WorldError::NoConsentingUser)?;
        let user = self.user_mut(&user_id).ok_or(WorldError::NoConsentingUser)?;
        let mut scopes: Vec<String> = match requested {
            Some(req) => req
                .iter()
                .filter(|s| user.grantable.contains(s))
                .cloned()
                .collect(),
            None => user.grantable.clone(),
        };
        if !scopes.iter().any(|s| s == PUBLIC_PROFILE) {
            scopes.push(PUBLIC_PROFILE.to_owned());
        }
        user.granted.extend(scopes.iter().cloned());
        Ok(self.new_code(CodeGrant::Login {
            redirect_uri: redirect_uri.to_owned(),
            user_id,
            scopes,
        }))
    }

    /// A code as WhatsApp Embedded Signup hands to the browser.
    pub fn embedded_signup_code(&mut self, waba_id: &str, scopes: &[String]) -> Result<String, WorldError> {
        self.waba(waba_id).ok_or_else(|| unknown("waba", waba_id))?;
        Ok(self.new_code(CodeGrant::EmbeddedSignup {
            waba_id: waba_id.to_owned(),
            scopes: scopes.to_vec(),
        }))
    }

    fn new_code(&mut self, grant: CodeGrant) -> String {
        let code = format!("AQ{}", random_alnum(190));
        let issued_at = self.now();
        self.codes.insert(
            code.clone(),
            Code {
                grant,
                issued_at,
                used: false,
            },
        );
        code
    }

    /// Redeem a code once. `redirect_uri` must repeat the dialog's exactly; Embedded Signup
    /// codes are exchanged without one.
    pub fn redeem_code(&mut self, code: &str, redirect_uri: Option<&str>) -> Result<CodeGrant, GraphError> {
        let now = self.now();
        let ttl = i64::try_from(self.config.code_ttl.as_secs()).unwrap_or(i64::MAX);
        let Some(c) = self.codes.get_mut(code) else {
            return Err(GraphError::invalid_param("Invalid verification code format."));
        };
        if c.used {
            return Err(GraphError::new(100, "This authorization code has been used.").with_subcode(36009));
        }
        if now - c.issued_at >= ttl {
            return Err(GraphError::new(100, "This authorization code has expired.").with_subcode(36007));
        }
        let matches = match (&c.grant, redirect_uri) {
            (
                CodeGrant::Login {
                    redirect_uri: want, ..
                },
                Some(got),
            ) => want == got,
            (CodeGrant::Login { .. }, None) => false,
            (CodeGrant::EmbeddedSignup { .. }, got) => got.is_none_or(str::is_empty),
        };
        if !matches {
            return Err(GraphError::new(
                100,
                "Error validating verification code. Please make sure your redirect_uri is identical to the \
                 one you used in the OAuth dialog request",
            )
            .with_subcode(36008));
        }
        c.used = true;
        Ok(c.grant.clone())
    }

    /// Mint the token a redeemed code stands for: `(token, expires_in)`.
    pub fn token_for_grant(&mut self, grant: CodeGrant) -> Result<(String, Option<i64>), GraphError> {
        match grant {
            CodeGrant::Login { user_id, scopes, .. } => Ok((
                self.mint_user_token(&user_id, scopes, false).1,
                Some(SHORT_LIVED_SECS),
            )),
            CodeGrant::EmbeddedSignup { waba_id, scopes } => self
                .issue_system_user_token(&waba_id, &scopes)
                .map(|t| (t, None))
                .map_err(|_| GraphError::unsupported(&http::Method::GET, &waba_id)),
        }
    }

    // ---------- tokens ----------

    fn is_app_secret_token(&self, token: &str) -> bool {
        token
            .split_once('|')
            .is_some_and(|(id, secret)| id == self.config.app_id && secret == self.config.app_secret.expose())
    }

    /// The type of a token, valid or not (for the call log).
    pub fn token_kind(&self, token: &str) -> Option<TokenKind> {
        if self.is_app_secret_token(token) {
            return Some(TokenKind::App);
        }
        self.by_value.get(token).map(|&id| self.tokens[id].kind)
    }

    fn invalid_reason(&self, id: TokenId) -> Option<(u32, String)> {
        let rec = &self.tokens[id];
        let mut cur = Some(id);
        while let Some(i) = cur {
            if let Some(sub) = self.tokens[i].invalidated {
                return Some((sub, invalidation_message(sub, &rec.owner, &self.config.app_id)));
            }
            cur = self.tokens[i].parent;
        }
        let now = self.now();
        if rec.expires_at != 0 && now >= rec.expires_at {
            return Some((463, expired_message(rec.expires_at, now)));
        }
        None
    }

    fn effective_scopes(&self, rec: &TokenRecord) -> BTreeSet<String> {
        let granted = match rec.kind {
            TokenKind::User | TokenKind::Page => self.user(&rec.owner).map(|u| &u.granted),
            TokenKind::SystemUser => self.system_user(&rec.owner).map(|s| &s.granted),
            TokenKind::App => None,
        };
        match granted {
            Some(g) => rec.scopes.iter().filter(|s| g.contains(*s)).cloned().collect(),
            None => BTreeSet::new(),
        }
    }

    fn waba_ids_of(&self, rec: &TokenRecord) -> Vec<String> {
        match rec.kind {
            TokenKind::SystemUser => self
                .system_user(&rec.owner)
                .map(|s| s.wabas.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Check a token: 190 when unknown, invalidated or expired.
    pub fn authenticate(&self, token: &str) -> Result<Auth, GraphError> {
        if self.is_app_secret_token(token) {
            return Ok(Auth {
                id: None,
                kind: TokenKind::App,
                owner: self.config.app_id.clone(),
                page_id: None,
                waba_ids: Vec::new(),
                scopes: BTreeSet::new(),
            });
        }
        let Some(&id) = self.by_value.get(token) else {
            return Err(if token.contains('|') {
                GraphError::new(190, "Invalid OAuth access token signature.")
            } else {
                GraphError::unparsable_token()
            });
        };
        if let Some((sub, msg)) = self.invalid_reason(id) {
            return Err(GraphError::invalid_token(sub, msg));
        }
        let rec = &self.tokens[id];
        Ok(Auth {
            id: Some(id),
            kind: rec.kind,
            owner: rec.owner.clone(),
            page_id: rec.page_id.clone(),
            waba_ids: self.waba_ids_of(rec),
            scopes: self.effective_scopes(rec),
        })
    }

    /// `debug_token`'s view; `None` for tokens Meta never issued.
    pub fn inspect(&self, token: &str) -> Option<Inspection> {
        if self.is_app_secret_token(token) {
            return Some(Inspection {
                kind: TokenKind::App,
                owner: self.config.app_id.clone(),
                page_id: None,
                waba_ids: Vec::new(),
                scopes: Vec::new(),
                issued_at: 0,
                expires_at: 0,
                data_access_expires_at: 0,
                invalid: None,
            });
        }
        let &id = self.by_value.get(token)?;
        let rec = &self.tokens[id];
        Some(Inspection {
            kind: rec.kind,
            owner: rec.owner.clone(),
            page_id: rec.page_id.clone(),
            waba_ids: self.waba_ids_of(rec),
            scopes: self.effective_scopes(rec).into_iter().collect(),
            issued_at: rec.issued_at,
            expires_at: rec.expires_at,
            data_access_expires_at: rec.data_access_expires_at,
            invalid: self.invalid_reason(id),
        })
    }

    /// Every later use of the token fails with 190/`subcode`.
    pub fn invalidate_token(&mut self, token: &str, subcode: u32) -> Result<(), WorldError> {
        let &id = self.by_value.get(token).ok_or(WorldError::UnknownToken)?;
        self.tokens[id].invalidated = Some(subcode);
        Ok(())
    }

    /// Invalidate every Page token of a Page; returns how many.
    pub fn invalidate_tokens_of_page(&mut self, page_id: &str, subcode: u32) -> usize {
        let mut n = 0;
        for rec in &mut self.tokens {
            if rec.kind == TokenKind::Page && rec.page_id.as_deref() == Some(page_id) {
                rec.invalidated = Some(subcode);
                n += 1;
            }
        }
        n
    }

    /// The owner (user or system user) withdraws a permission; `who` may be a user id, a system
    /// user id, a WABA id (its system user) or a token (its owner).
    pub fn revoke_scope(&mut self, who: &str, scope: &str) -> Result<(), WorldError> {
        let owner = if self.user(who).is_some() || self.system_user(who).is_some() {
            who.to_owned()
        } else if let Some(&id) = self.by_value.get(who) {
            self.tokens[id].owner.clone()
        } else if let Some(su) = self
            .system_users
            .iter()
            .find(|s| s.wabas.iter().any(|w| w == who))
        {
            su.id.clone()
        } else {
            return Err(unknown("user", who));
        };
        if let Some(u) = self.users.iter_mut().find(|u| u.id == owner) {
            u.granted.remove(scope);
        }
        if let Some(s) = self.system_users.iter_mut().find(|s| s.id == owner) {
            s.granted.remove(scope);
        }
        Ok(())
    }

    // ---------- subscriptions ----------

    /// Meta dropping the app's subscription on a Page or WABA.
    pub fn drop_subscription(&mut self, object_id: &str) -> Result<(), WorldError> {
        if let Some(p) = self.page_mut(object_id) {
            p.subscription = None;
        } else if let Some(w) = self.waba_mut(object_id) {
            w.subscription = None;
        } else {
            return Err(unknown("page or waba", object_id));
        }
        Ok(())
    }

    /// What the app is subscribed to on a Page or WABA.
    pub fn subscribed_fields(&self, object_id: &str) -> Option<Vec<String>> {
        if let Some(p) = self.page(object_id) {
            return p.subscription.clone();
        }
        self.waba(object_id)
            .and_then(|w| w.subscription.as_ref())
            .map(|s| s.fields.clone())
    }

    // ---------- lookups ----------

    /// What an id names.
    pub fn resolve(&self, id: &str) -> Option<Node> {
        let id_s = || id.to_owned();
        if self.page(id).is_some() {
            Some(Node::Page(id_s()))
        } else if self.ig(id).is_some() {
            Some(Node::Ig(id_s()))
        } else if self.phone(id).is_some() {
            Some(Node::Phone(id_s()))
        } else if self.waba(id).is_some() {
            Some(Node::Waba(id_s()))
        } else if self.user(id).is_some() {
            Some(Node::User(id_s()))
        } else if self.system_user(id).is_some() {
            Some(Node::SystemUser(id_s()))
        } else if self.threads.find_message(id).is_some() {
            Some(Node::Message(id_s()))
        } else if self.threads.find_conversation(id).is_some() {
            Some(Node::Conversation(id_s()))
        } else if self.media.whatsapp_media(id).is_some() {
            Some(Node::Media(id_s()))
        } else {
            None
        }
    }

    /// What an id names, or an error naming the id (for the steering API).
    pub fn node(&self, id: &str) -> Result<Node, WorldError> {
        self.resolve(id).ok_or_else(|| unknown("object", id))
    }

    /// A person.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
    fn user_mut(&mut self, id: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.id == id)
    }
    /// A Page.
    pub fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|p| p.id == id)
    }
    /// A Page, mutably.
    pub fn page_mut(&mut self, id: &str) -> Option<&mut Page> {
        self.pages.iter_mut().find(|p| p.id == id)
    }
    /// An Instagram account.
    pub fn ig(&self, id: &str) -> Option<&IgAccount> {
        self.igs.iter().find(|i| i.id == id)
    }
    /// A WABA.
    pub fn waba(&self, id: &str) -> Option<&Waba> {
        self.wabas.iter().find(|w| w.id == id)
    }
    /// A WABA, mutably.
    pub fn waba_mut(&mut self, id: &str) -> Option<&mut Waba> {
        self.wabas.iter_mut().find(|w| w.id == id)
    }
    /// A phone number.
    pub fn phone(&self, id: &str) -> Option<&Phone> {
        self.phones.iter().find(|p| p.id == id)
    }
    /// A system user.
    pub fn system_user(&self, id: &str) -> Option<&SystemUser> {
        self.system_users.iter().find(|s| s.id == id)
    }
    /// All WABAs.
    pub fn wabas(&self) -> &[Waba] {
        &self.wabas
    }
    /// Phone numbers of a WABA.
    pub fn phones_of(&self, waba_id: &str) -> Vec<&Phone> {
        self.phones.iter().filter(|p| p.waba_id == waba_id).collect()
    }
    /// Pages a user administers, in creation order.
    pub fn pages_of(&self, user_id: &str) -> Vec<&Page> {
        self.pages
            .iter()
            .filter(|p| p.managers.iter().any(|m| m == user_id))
            .collect()
    }
    /// Whether a user administers a Page.
    pub fn manages(&self, user_id: &str, page_id: &str) -> bool {
        self.page(page_id)
            .is_some_and(|p| p.managers.iter().any(|m| m == user_id))
    }

    /// Whether the token may act on a WABA (and its phone numbers): a system user token issued
    /// for it, or a user token holding a WhatsApp permission (the simulator does not model
    /// Business Manager roles, so such a user sees every WABA).
    pub fn can_access_waba(&self, auth: &Auth, waba_id: &str) -> bool {
        match auth.kind {
            TokenKind::SystemUser => auth.waba_ids.iter().any(|w| w == waba_id),
            TokenKind::User => auth.scopes.iter().any(|s| s.starts_with("whatsapp_")),
            TokenKind::Page | TokenKind::App => false,
        }
    }

    /// Whether the token may see a Page's private edges / an IG account linked to it.
    pub fn can_manage_page(&self, auth: &Auth, page_id: &str) -> bool {
        match auth.kind {
            TokenKind::Page => auth.page_id.as_deref() == Some(page_id),
            TokenKind::User => self.manages(&auth.owner, page_id),
            TokenKind::SystemUser | TokenKind::App => false,
        }
    }
}

fn invalidation_message(subcode: u32, owner: &str, app_id: &str) -> String {
    let why = match subcode {
        458 => format!("The user has not authorized application {app_id}."),
        459 => {
            "You cannot access the app till you log in to www.facebook.com and follow the instructions given."
                .to_owned()
        }
        460 => "The session has been invalidated because the user changed their password or Facebook has \
                changed the session for security reasons."
            .to_owned(),
        463 => "Session has expired.".to_owned(),
        464 => {
            format!("Sessions for the user {owner} are not allowed because the user is not a confirmed user.")
        }
        467 => "The session is invalid because the user logged out.".to_owned(),
        492 => "The session is invalid because the user is no longer an admin of the page.".to_owned(),
        _ => "The session is invalid.".to_owned(),
    };
    format!("Error validating access token: {why}")
}

fn expired_message(expired_at: i64, now: i64) -> String {
    let fmt = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%A, %d-%b-%y %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    format!(
        "Error validating access token: Session has expired on {}. The current time is {}.",
        fmt(expired_at),
        fmt(now)
    )
}

/// Random bytes from ring's `SystemRandom`. If the OS generator fails there is nothing a
/// simulator can do about it; uuid's v4 (the same OS source via getrandom) keeps it going.
pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    if SystemRandom::new().fill(&mut buf).is_err() {
        for chunk in buf.chunks_mut(16) {
            let u = uuid::Uuid::new_v4();
            chunk.copy_from_slice(&u.as_bytes()[..chunk.len()]);
        }
    }
    buf
}

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random characters from `[A-Za-z0-9]` (unbiased: bytes ≥ 248 are redrawn).
pub(crate) fn random_alnum(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes(len) {
            if b < 248 && out.len() < len {
                out.push(char::from(ALNUM[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// A decimal id of `len` digits starting with `prefix`.
pub(crate) fn digits(prefix: &str, len: usize) -> String {
    let mut s = prefix.to_owned();
    for b in random_bytes(len) {
        if s.len() >= len {
            break;
        }
        s.push(char::from(b'0' + b % 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppSecret;

    fn world() -> World {
        World::new(GraphSimConfig::new("123", AppSecret::new("s3cret")))
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn consent_grants_requested_intersect_grantable_plus_public_profile() {
        let mut w = world();
        let u = w.add_user(None, "Ana", &["pages_show_list", "pages_messaging"]);
        let code = w
            .consent(
                "https://app/cb",
                Some(&strings(&["pages_messaging", "ads_management"])),
            )
            .unwrap();
        let grant = w.redeem_code(&code, Some("https://app/cb")).unwrap();
        assert_eq!(
            grant,
            CodeGrant::Login {
                redirect_uri: "https://app/cb".into(),
                user_id: u,
                scopes: strings(&["pages_messaging", "public_profile"])
            }
        );
    }

    #[test]
    fn codes_are_single_use_bound_to_redirect_and_expire() {
        let mut w = world();
        w.add_user(None, "Ana", &["pages_show_list"]);
        let code = w.consent("https://a/cb", None).unwrap();
        assert_eq!(
            w.redeem_code(&code, Some("https://a/other")).unwrap_err().subcode,
            Some(36008)
        );
        assert!(w.redeem_code(&code, Some("https://a/cb")).is_ok());
        assert_eq!(
            w.redeem_code(&code, Some("https://a/cb")).unwrap_err().subcode,
            Some(36009)
        );
        let code = w.consent("https://a/cb", None).unwrap();
        w.advance_clock(Duration::from_secs(601));
        assert_eq!(
            w.redeem_code(&code, Some("https://a/cb")).unwrap_err().subcode,
            Some(36007)
        );
        assert_eq!(w.redeem_code("AQnope", None).unwrap_err().code, 100);
    }

    #[test]
    fn tokens_expire_on_the_simulated_clock() {
        let mut w = world();
        let u = w.add_user(None, "Ana", &[]);
        let t = w
            .issue_user_token(&u, &strings(&["pages_show_list"]), true)
            .unwrap();
        assert!(t.starts_with("EAAG") && t.len() == 180 && t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(w.authenticate(&t).is_ok());
        w.advance_clock(Duration::from_secs(u64::try_from(LONG_LIVED_SECS).unwrap()));
        let e = w.authenticate(&t).unwrap_err();
        assert_eq!((e.code, e.subcode), (190, Some(463)));
        assert_eq!(w.inspect(&t).unwrap().invalid.unwrap().0, 463);
    }

    #[test]
    fn page_tokens_outlive_long_lived_user_tokens_but_not_their_invalidation() {
        let mut w = world();
        let u = w.add_user(None, "Ana", &[]);
        let p = w.add_page(None, &u, "Bakery").unwrap();
        let ut = w
            .issue_user_token(&u, &strings(&["pages_messaging"]), true)
            .unwrap();
        let auth = w.authenticate(&ut).unwrap();
        let pt = w.page_token(auth.id.unwrap(), &p);
        assert_eq!(pt, w.page_token(auth.id.unwrap(), &p), "stable per user token");
        let pa = w.authenticate(&pt).unwrap();
        assert_eq!(
            (pa.kind, pa.page_id.as_deref()),
            (TokenKind::Page, Some(p.as_str()))
        );
        assert_eq!(w.inspect(&pt).unwrap().expires_at, 0);
        w.advance_clock(Duration::from_secs(100 * 24 * 3600));
        assert!(w.authenticate(&ut).is_err());
        assert!(w.authenticate(&pt).is_ok(), "page token never expires");
        w.invalidate_token(&ut, 460).unwrap();
        assert_eq!(w.authenticate(&pt).unwrap_err().subcode, Some(460));
    }

    #[test]
    fn revoking_a_scope_shrinks_every_token_of_the_owner_and_consent_restores_it() {
        let mut w = world();
        let u = w.add_user(None, "Ana", &["pages_messaging", "pages_show_list"]);
        let t = w
            .issue_user_token(&u, &strings(&["pages_messaging", "pages_show_list"]), false)
            .unwrap();
        w.revoke_scope(&t, "pages_messaging").unwrap();
        assert!(!w.authenticate(&t).unwrap().has("pages_messaging"));
        assert!(w.authenticate(&t).unwrap().has("pages_show_list"));
        w.consent("x", Some(&strings(&["pages_messaging"]))).unwrap();
        assert!(w.authenticate(&t).unwrap().has("pages_messaging"));
        assert!(w.revoke_scope("nobody", "x").is_err());
    }

    #[test]
    fn app_tokens_and_garbage() {
        let mut w = world();
        assert_eq!(w.authenticate("123|s3cret").unwrap().kind, TokenKind::App);
        assert_eq!(w.authenticate("123|wrong").unwrap_err().code, 190);
        assert_eq!(
            w.authenticate("garbage").unwrap_err(),
            GraphError::unparsable_token()
        );
        let t = w.issue_app_token();
        assert!(t.starts_with("123|"));
        assert_eq!(w.authenticate(&t).unwrap().kind, TokenKind::App);
    }

    #[test]
    fn system_user_tokens_are_scoped_to_their_waba() {
        let mut w = world();
        let waba = w.add_waba(None, "Biz");
        let other = w.add_waba(None, "Other");
        let t = w
            .issue_system_user_token(&waba, &strings(&["whatsapp_business_management"]))
            .unwrap();
        let a = w.authenticate(&t).unwrap();
        assert!(w.can_access_waba(&a, &waba));
        assert!(!w.can_access_waba(&a, &other));
        assert_eq!(w.inspect(&t).unwrap().expires_at, 0);
        w.revoke_scope(&waba, "whatsapp_business_management").unwrap();
        assert!(!w.authenticate(&t).unwrap().has("whatsapp_business_management"));
    }

    #[test]
    fn ids_look_like_meta_ids() {
        let mut w = world();
        let u = w.add_user(None, "Ana", &[]);
        let p = w.add_page(None, &u, "P").unwrap();
        let ig = w.link_instagram(None, &p, "bakery").unwrap();
        assert_eq!((u.len(), p.len(), ig.len()), (15, 15, 17));
        assert!(ig.starts_with("1784"));
        assert_eq!(w.resolve(&ig), Some(Node::Ig(ig.clone())));
        assert!(w.add_page(None, "nobody", "P").is_err());
    }
}
