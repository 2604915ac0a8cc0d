//! Connecting channels: Facebook Login (state → code → long-lived user token → Pages) and
//! WhatsApp (system-user token or Embedded Signup code). Every token is checked with debug_token
//! before it is stored; the app is subscribed to the account's webhooks; the store write, the
//! channel events and the audit records commit together.

use base64::Engine as _;
use ring::rand::SecureRandom;
use scifer_audit::{Actor, Audit, Outcome, action};
use scifer_graph::{GraphError, Token, TokenInfo, TokenType};
use scifer_ids::WorkspaceId;
use scifer_proto::{
    events::v1::{ChannelKind, ChannelState},
    tokenvault::v1::PageCandidate,
};
use scifer_vault_crypto::{Plaintext, TokenAad};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set, sea_query::Expr,
};

use crate::{
    domain::scopes,
    error::VaultError,
    store::entity::{channel, connect_session},
    vault::{PAGE_TOKEN, SYSTEM_USER_TOKEN, USER_TOKEN, Vault, now_ms},
};

/// What StartConnect returns.
pub struct Started {
    pub dialog_url: String,
    pub state: String,
    pub expires_at_ms: i64,
}

pub struct Candidates {
    pub session_id: String,
    pub pages: Vec<PageCandidate>,
    pub expires_at_ms: i64,
}

/// A channel about to be stored.
struct NewChannel {
    kind: ChannelKind,
    account_id: String,
    parent_account_id: String,
    display_name: String,
    scopes: Vec<String>,
    token_expires_at_ms: Option<i64>,
    token: Token,
    token_kind: &'static str,
}

fn state_hash(state: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, state.as_bytes()))
}

/// Meta's refusal (or Graph being out of reach) as the vault's error for a call it makes itself.
pub(crate) fn graph_failure(e: GraphError) -> VaultError {
    match e {
        GraphError::Meta(m) => VaultError::Meta(format!(
            "{} (code {}{})",
            m.message,
            m.code,
            match m.subcode {
                Some(s) => format!(", subcode {s}"),
                None => String::new(),
            }
        )),
        GraphError::Throttled { retry_after, .. } => VaultError::GraphUnavailable(format!(
            "rate limited by Meta; retry in {} s",
            retry_after.as_secs().max(1)
        )),
        other => VaultError::GraphUnavailable(other.to_string()),
    }
}

/// Checks a token Meta issued for us: valid, for our app, of the expected type, with `required`.
fn check_token(
    info: &TokenInfo,
    app_id: &str,
    expected: &[TokenType],
    required: &[&str],
    what: &str,
) -> Result<(), VaultError> {
    if !info.is_valid {
        return Err(VaultError::TokenRefused(format!("the {what} token is not valid")));
    }
    if info.app_id != app_id {
        return Err(VaultError::TokenRefused(format!(
            "the {what} token was issued to another app"
        )));
    }
    if !expected.contains(&info.token_type) {
        return Err(VaultError::TokenRefused(format!(
            "a {what} token is needed, but a {:?} token was given",
            info.token_type
        )));
    }
    if let Some(missing) = required.iter().find(|s| !info.scopes.iter().any(|g| g == *s)) {
        return Err(VaultError::TokenRefused(format!(
            "the {what} token lacks the `{missing}` permission; grant it in the Facebook dialog and connect again"
        )));
    }
    Ok(())
}

fn expires_ms(info: &TokenInfo) -> Option<i64> {
    info.expires_at.filter(|t| *t > 0).map(|t| t * 1000)
}

impl Vault {
    pub async fn start_connect(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        redirect_uri: &str,
    ) -> Result<Started, VaultError> {
        if user_id.is_empty() {
            return Err(VaultError::InvalidArgument("user_id is required".into()));
        }
        if !self.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(VaultError::InvalidArgument(
                "redirect_uri is not one of the vault's CONNECT_REDIRECT_URIS".into(),
            ));
        }
        let mut raw = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| VaultError::Internal("no randomness".into()))?;
        let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let expires_at_ms = now_ms() + self.connect_ttl.as_millis() as i64;
        connect_session::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            state_hash: Set(state_hash(&state)),
            workspace_id: Set(workspace.to_string()),
            user_id: Set(user_id.to_string()),
            redirect_uri: Set(redirect_uri.to_string()),
            expires_at_ms: Set(expires_at_ms),
            state_used: Set(false),
            user_token_sealed: Set(None),
            data_key_version: Set(None),
            created_at_ms: Set(now_ms()),
        }
        .insert(&self.db)
        .await?;
        // Expired sessions go with the next start; they hold at most a sealed user token.
        connect_session::Entity::delete_many()
            .filter(connect_session::Column::ExpiresAtMs.lt(now_ms()))
            .exec(&self.db)
            .await?;
        let dialog_url = self
            .graph
            .dialog_url(redirect_uri, &state, scopes::LOGIN_SCOPES)
            .to_string();
        Ok(Started {
            dialog_url,
            state,
            expires_at_ms,
        })
    }

    pub async fn complete_connect(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        state: &str,
        code: &str,
    ) -> Result<Candidates, VaultError> {
        let session = connect_session::Entity::find()
            .filter(connect_session::Column::StateHash.eq(state_hash(state)))
            .one(&self.db)
            .await?
            .ok_or(VaultError::ConnectSession)?;
        if session.workspace_id != workspace.as_str()
            || session.user_id != user_id
            || session.expires_at_ms < now_ms()
            || session.state_used
        {
            return Err(VaultError::ConnectSession);
        }
        // Single use, even under concurrent callbacks: only one UPDATE flips the flag.
        let flipped = connect_session::Entity::update_many()
            .col_expr(connect_session::Column::StateUsed, Expr::value(true))
            .filter(connect_session::Column::Id.eq(&session.id))
            .filter(connect_session::Column::StateUsed.eq(false))
            .exec(&self.db)
            .await?;
        if flipped.rows_affected != 1 {
            return Err(VaultError::ConnectSession);
        }
        let short = self
            .graph
            .exchange_code(code, Some(&session.redirect_uri))
            .await
            .map_err(graph_failure)?;
        let long = self
            .graph
            .exchange_long_lived(&short.token)
            .await
            .map_err(graph_failure)?;
        let info = self.graph.debug_token(&long.token).await.map_err(graph_failure)?;
        check_token(
            &info,
            &self.app_id,
            &[TokenType::User],
            scopes::USER_TOKEN_SCOPES,
            "user",
        )?;

        let pages = self.page_candidates(workspace, &long.token).await?;
        let aad = TokenAad {
            workspace_id: workspace.as_str(),
            channel_id: "",
            token_kind: USER_TOKEN,
            record_id: &session.id,
        };
        let plain = Plaintext::from_string(long.token.expose().to_string());
        let (sealed, version) = self.keys.seal(&self.db, &aad, &plain).await?;
        let mut row = session.clone().into_active_model();
        row.user_token_sealed = Set(Some(sealed));
        row.data_key_version = Set(Some(version));
        row.state_used = Set(true);
        row.update(&self.db).await?;
        Ok(Candidates {
            session_id: session.id,
            pages,
            expires_at_ms: session.expires_at_ms,
        })
    }

    async fn page_candidates(
        &self,
        workspace: &WorkspaceId,
        user: &Token,
    ) -> Result<Vec<PageCandidate>, VaultError> {
        let accounts = self.graph.me_accounts(user).await.map_err(graph_failure)?;
        let mut out = Vec::with_capacity(accounts.len());
        for page in accounts {
            let ig = self
                .graph
                .page_instagram_account(&page.id, &page.token)
                .await
                .map_err(graph_failure)?;
            let connected = channel::Entity::find()
                .filter(channel::Column::Kind.eq(ChannelKind::Messenger as i32))
                .filter(channel::Column::AccountId.eq(&page.id))
                .filter(channel::Column::WorkspaceId.eq(workspace.as_str()))
                .one(&self.db)
                .await?;
            out.push(PageCandidate {
                page_id: page.id.clone(),
                name: page.name.clone(),
                instagram_account_id: ig.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
                instagram_username: ig.and_then(|i| i.username).unwrap_or_default(),
                connected_channel_id: connected.map(|c| c.id).unwrap_or_default(),
                can_message: page.tasks.iter().any(|t| t == "MODERATE" || t == "MANAGE"),
            });
        }
        Ok(out)
    }

    pub async fn confirm_connect(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        session_id: &str,
        page_ids: &[String],
    ) -> Result<Vec<channel::Model>, VaultError> {
        if page_ids.is_empty() {
            return Err(VaultError::InvalidArgument("choose at least one Page".into()));
        }
        let session = connect_session::Entity::find_by_id(session_id.to_string())
            .one(&self.db)
            .await?
            .ok_or(VaultError::ConnectSession)?;
        let sealed = match (
            &session.user_token_sealed,
            session.workspace_id == workspace.as_str(),
        ) {
            (Some(sealed), true) if session.user_id == user_id && session.expires_at_ms >= now_ms() => {
                sealed.clone()
            }
            _ => return Err(VaultError::ConnectSession),
        };
        let aad = TokenAad {
            workspace_id: workspace.as_str(),
            channel_id: "",
            token_kind: USER_TOKEN,
            record_id: &session.id,
        };
        let user = self.keys.open(&self.db, &aad, &sealed).await?;
        let user = Token::new(user.expose_str().ok_or(VaultError::Crypto)?.to_string());
        let accounts = self.graph.me_accounts(&user).await.map_err(graph_failure)?;

        let mut new = Vec::new();
        for page_id in page_ids {
            let page = accounts.iter().find(|p| &p.id == page_id).ok_or_else(|| {
                VaultError::InvalidArgument(format!("Page {page_id} is not one of this login's Pages"))
            })?;
            let info = self.graph.debug_token(&page.token).await.map_err(graph_failure)?;
            check_token(
                &info,
                &self.app_id,
                &[TokenType::Page],
                scopes::required(ChannelKind::Messenger),
                "Page",
            )?;
            if info.profile_id.as_deref() != Some(page.id.as_str()) {
                return Err(VaultError::TokenRefused(format!(
                    "the Page token is not for Page {}",
                    page.id
                )));
            }
            self.graph
                .subscribe_app(&page.id, scopes::PAGE_FIELDS, &page.token)
                .await
                .map_err(graph_failure)?;
            let page_token = Token::new(page.token.expose().to_string());
            new.push(NewChannel {
                kind: ChannelKind::Messenger,
                account_id: page.id.clone(),
                parent_account_id: String::new(),
                display_name: page.name.clone(),
                scopes: info.scopes.clone(),
                token_expires_at_ms: expires_ms(&info),
                token: page_token,
                token_kind: PAGE_TOKEN,
            });
            let ig = self
                .graph
                .page_instagram_account(&page.id, &page.token)
                .await
                .map_err(graph_failure)?;
            match ig {
                Some(ig) if scopes::first_missing(ChannelKind::Instagram, &info.scopes).is_none() => {
                    new.push(NewChannel {
                        kind: ChannelKind::Instagram,
                        display_name: ig.username.clone().unwrap_or_else(|| ig.id.clone()),
                        account_id: ig.id,
                        parent_account_id: page.id.clone(),
                        scopes: info.scopes.clone(),
                        token_expires_at_ms: expires_ms(&info),
                        token: Token::new(page.token.expose().to_string()),
                        token_kind: PAGE_TOKEN,
                    });
                }
                Some(ig) => tracing::info!(page_id = %page.id, ig_id = %ig.id,
                    "Instagram account not connected: Instagram messaging permissions were not granted"),
                None => {}
            }
        }
        let stored = self.store_channels(workspace, user_id, new).await?;
        // The user token has done its job: destroy it with the session.
        connect_session::Entity::delete_by_id(session.id)
            .exec(&self.db)
            .await?;
        Ok(stored)
    }

    pub async fn connect_whatsapp(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        waba_id: &str,
        credential: WhatsAppCredential,
    ) -> Result<Vec<channel::Model>, VaultError> {
        if waba_id.is_empty() || !waba_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VaultError::InvalidArgument(
                "waba_id must be a numeric WhatsApp Business Account id".into(),
            ));
        }
        let token = match credential {
            WhatsAppCredential::SystemUserToken(t) => Token::new(t),
            WhatsAppCredential::EmbeddedSignupCode(code) => {
                self.graph
                    .exchange_code(&code, None)
                    .await
                    .map_err(graph_failure)?
                    .token
            }
        };
        let info = self.graph.debug_token(&token).await.map_err(graph_failure)?;
        check_token(
            &info,
            &self.app_id,
            &[TokenType::SystemUser, TokenType::User],
            scopes::required(ChannelKind::Whatsapp),
            "WhatsApp system-user",
        )?;
        // Granular scopes, when present, must include this WABA.
        let targets: Vec<&String> = info
            .granular_scopes
            .iter()
            .filter(|g| g.scope == "whatsapp_business_messaging")
            .flat_map(|g| g.target_ids.iter())
            .collect();
        if !targets.is_empty() && !targets.iter().any(|t| t.as_str() == waba_id) {
            return Err(VaultError::TokenRefused(format!(
                "the token is not granted access to WhatsApp Business Account {waba_id}"
            )));
        }
        let numbers = self
            .graph
            .waba_phone_numbers(waba_id, &token)
            .await
            .map_err(graph_failure)?;
        if numbers.is_empty() {
            return Err(VaultError::InvalidArgument(format!(
                "WhatsApp Business Account {waba_id} has no phone numbers"
            )));
        }
        self.graph
            .subscribe_app(waba_id, &[], &token)
            .await
            .map_err(graph_failure)?;
        let new = numbers
            .into_iter()
            .map(|n| NewChannel {
                kind: ChannelKind::Whatsapp,
                display_name: n
                    .verified_name
                    .map(|v| format!("{v} ({})", n.display_phone_number))
                    .unwrap_or(n.display_phone_number),
                account_id: n.id,
                parent_account_id: waba_id.to_string(),
                scopes: info.scopes.clone(),
                token_expires_at_ms: expires_ms(&info),
                token: Token::new(token.expose().to_string()),
                token_kind: SYSTEM_USER_TOKEN,
            })
            .collect();
        self.store_channels(workspace, user_id, new).await
    }

    /// Inserts or reconnects channels with their sealed tokens, their events and audit records, in
    /// one transaction.
    async fn store_channels(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        new: Vec<NewChannel>,
    ) -> Result<Vec<channel::Model>, VaultError> {
        let txn = scifer_db::begin_write(&self.db).await?;
        let mut stored = Vec::with_capacity(new.len());
        for n in new {
            let existing = channel::Entity::find()
                .filter(channel::Column::Kind.eq(n.kind as i32))
                .filter(channel::Column::AccountId.eq(&n.account_id))
                .one(&txn)
                .await?;
            let now = now_ms();
            let (row, reconnect) = match existing {
                Some(other) if other.workspace_id != workspace.as_str() => {
                    return Err(VaultError::AlreadyConnectedElsewhere(format!(
                        "{} is already connected to another workspace; disconnect it there first",
                        n.display_name
                    )));
                }
                Some(current) => {
                    let mut row = current.clone().into_active_model();
                    row.display_name = Set(n.display_name.clone());
                    row.parent_account_id = Set(n.parent_account_id.clone());
                    row.state = Set(ChannelState::Connected as i32);
                    row.state_reason = Set(String::new());
                    row.version = Set(current.version + 1);
                    row.scopes = Set(n.scopes.join(","));
                    row.token_expires_at_ms = Set(n.token_expires_at_ms);
                    row.last_checked_at_ms = Set(Some(now));
                    row.updated_at_ms = Set(now);
                    (row.update(&txn).await?, true)
                }
                None => {
                    let row = channel::ActiveModel {
                        id: Set(uuid::Uuid::now_v7().to_string()),
                        workspace_id: Set(workspace.to_string()),
                        kind: Set(n.kind as i32),
                        account_id: Set(n.account_id.clone()),
                        parent_account_id: Set(n.parent_account_id.clone()),
                        display_name: Set(n.display_name.clone()),
                        state: Set(ChannelState::Connected as i32),
                        state_reason: Set(String::new()),
                        version: Set(1),
                        scopes: Set(n.scopes.join(",")),
                        token_expires_at_ms: Set(n.token_expires_at_ms),
                        last_checked_at_ms: Set(Some(now)),
                        connected_at_ms: Set(now),
                        connected_by: Set(user_id.to_string()),
                        updated_at_ms: Set(now),
                    };
                    (row.insert(&txn).await?, false)
                }
            };
            self.store_token(&txn, &row, n.token_kind, &n.token).await?;
            self.announce(&txn, &row).await?;
            self.record(
                &txn,
                Audit::new(
                    workspace,
                    Actor::user(user_id),
                    action::CHANNEL_CONNECTED,
                    Outcome::Success,
                )
                .target("channel", &row.id)
                .detail(format!(
                    "{} {}{}",
                    ChannelKind::try_from(row.kind)
                        .map(|k| k.as_str_name())
                        .unwrap_or("?"),
                    row.account_id,
                    if reconnect { " (reconnected)" } else { "" }
                )),
            )
            .await?;
            stored.push(row);
        }
        txn.commit().await?;
        self.published();
        Ok(stored)
    }
}

pub enum WhatsAppCredential {
    SystemUserToken(String),
    EmbeddedSignupCode(String),
}
