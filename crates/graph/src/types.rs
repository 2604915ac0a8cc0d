//! Typed results of the vault's Graph calls and their decoding from Meta's JSON (§6).

use serde_json::Value;

use crate::error::GraphError;
use crate::secret::Token;

/// A token returned by an OAuth exchange.
pub struct IssuedToken {
    pub token: Token,
    /// Seconds until expiry; `None` when Meta gives none (non-expiring or unknown).
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"***")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenType {
    User,
    Page,
    SystemUser,
    App,
    /// Anything else, verbatim (empty when Meta omitted the type).
    Other(String),
}

impl TokenType {
    fn parse(s: &str) -> Self {
        match s {
            "USER" => TokenType::User,
            "PAGE" => TokenType::Page,
            "SYSTEM_USER" => TokenType::SystemUser,
            "APP" => TokenType::App,
            other => TokenType::Other(other.to_owned()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranularScope {
    pub scope: String,
    /// Empty when the scope applies to every asset.
    pub target_ids: Vec<String>,
}

/// `debug_token`'s `data` (§6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub is_valid: bool,
    pub token_type: TokenType,
    pub app_id: String,
    pub profile_id: Option<String>,
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
    pub granular_scopes: Vec<GranularScope>,
    /// Unix seconds; `None` when Meta reports 0 (never expires).
    pub expires_at: Option<i64>,
    /// Unix seconds; `None` when absent or 0.
    pub data_access_expires_at: Option<i64>,
    /// `(code, subcode)` of an invalid token, e.g. `(190, Some(463))` for expired.
    pub error: Option<(i64, Option<i64>)>,
}

/// A Page from `me/accounts`, with its Page token.
#[derive(Clone)]
pub struct PageAccount {
    pub id: String,
    pub name: String,
    pub token: Token,
    /// Tasks the user may perform on the Page (`MANAGE`, `MODERATE`, `MESSAGING`, ...).
    pub tasks: Vec<String>,
}

impl std::fmt::Debug for PageAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageAccount")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("token", &"***")
            .field("tasks", &self.tasks)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstagramAccount {
    pub id: String,
    pub username: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    pub id: String,
    pub display_phone_number: String,
    pub verified_name: Option<String>,
}

fn decode(msg: impl Into<String>) -> GraphError {
    GraphError::Decode(msg.into())
}

/// IDs are strings in Graph JSON; accept numbers too.
fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings_of(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| id_of(Some(s))).collect())
        .unwrap_or_default()
}

/// `{"access_token":"EAAG...","token_type":"bearer","expires_in":5183944}`. The token string is
/// moved out of the JSON value, not copied.
pub(crate) fn issued_token_from(mut body: Value) -> Result<IssuedToken, GraphError> {
    let expires_in = int_of(body.get("expires_in")).and_then(|n| u64::try_from(n).ok());
    match body.get_mut("access_token").map(Value::take) {
        Some(Value::String(token)) if !token.is_empty() => Ok(IssuedToken {
            token: Token::new(token),
            expires_in,
        }),
        _ => Err(decode("token response has no access_token")),
    }
}

/// `debug_token` response (§6.2).
pub(crate) fn token_info_from(body: &Value) -> Result<TokenInfo, GraphError> {
    let data = body
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| decode("debug_token response has no data object"))?;
    let granular_scopes = data
        .get("granular_scopes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| {
                    Some(GranularScope {
                        scope: str_of(g.get("scope"))?,
                        target_ids: strings_of(g.get("target_ids")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let nonzero = |key: &str| int_of(data.get(key)).filter(|t| *t != 0);
    let error = data
        .get("error")
        .and_then(|e| Some((int_of(e.get("code"))?, int_of(e.get("subcode")))));
    Ok(TokenInfo {
        is_valid: data.get("is_valid").and_then(Value::as_bool).unwrap_or(false),
        token_type: TokenType::parse(data.get("type").and_then(Value::as_str).unwrap_or("")),
        app_id: id_of(data.get("app_id")).unwrap_or_default(),
        profile_id: id_of(data.get("profile_id")),
        user_id: id_of(data.get("user_id")),
        scopes: strings_of(data.get("scopes")),
        granular_scopes,
        expires_at: nonzero("expires_at"),
        data_access_expires_at: nonzero("data_access_expires_at"),
        error,
    })
}

/// One page of `me/accounts`. Entries without an id or Page token are skipped (the user lacks
/// the task that would give one); their ids are logged.
pub(crate) fn page_accounts_from(body: &mut Value) -> Result<Vec<PageAccount>, GraphError> {
    let data = body
        .get_mut("data")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| decode("me/accounts response has no data array"))?;
    let mut out = Vec::with_capacity(data.len());
    for entry in data.iter_mut() {
        let id = id_of(entry.get("id"));
        let token = entry.get_mut("access_token").map(Value::take);
        match (id, token) {
            (Some(id), Some(Value::String(token))) if !token.is_empty() => out.push(PageAccount {
                name: str_of(entry.get("name")).unwrap_or_default(),
                tasks: strings_of(entry.get("tasks")),
                id,
                token: Token::new(token),
            }),
            (id, _) => {
                tracing::warn!(page_id = ?id, "me/accounts entry without a Page token skipped");
            }
        }
    }
    Ok(out)
}

/// `{page}?fields=instagram_business_account{id,username}`.
pub(crate) fn instagram_from(body: &Value) -> Result<Option<InstagramAccount>, GraphError> {
    match body.get("instagram_business_account") {
        None | Some(Value::Null) => Ok(None),
        Some(ig) => Ok(Some(InstagramAccount {
            id: id_of(ig.get("id")).ok_or_else(|| decode("instagram_business_account has no id"))?,
            username: str_of(ig.get("username")),
        })),
    }
}

/// One page of `{waba}/phone_numbers`.
pub(crate) fn phone_numbers_from(body: &Value) -> Result<Vec<PhoneNumber>, GraphError> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| decode("phone_numbers response has no data array"))?;
    data.iter()
        .map(|p| {
            Ok(PhoneNumber {
                id: id_of(p.get("id")).ok_or_else(|| decode("phone number without id"))?,
                display_phone_number: str_of(p.get("display_phone_number")).unwrap_or_default(),
                verified_name: str_of(p.get("verified_name")),
            })
        })
        .collect()
}

/// Our app's entry in `GET {object}/subscribed_apps`. Page entries are
/// `{"id","name","subscribed_fields"}`; WhatsApp entries nest the app under
/// `whatsapp_business_api_data` and list no fields (an empty list is returned then).
pub(crate) fn subscribed_fields_from(body: &Value, app_id: &str) -> Result<Option<Vec<String>>, GraphError> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| decode("subscribed_apps response has no data array"))?;
    let ours = data.iter().find(|entry| {
        let id = id_of(entry.get("id"))
            .or_else(|| id_of(entry.get("whatsapp_business_api_data").and_then(|w| w.get("id"))));
        id.as_deref() == Some(app_id)
    });
    Ok(ours.map(|entry| strings_of(entry.get("subscribed_fields"))))
}

pub(crate) fn success_flag(body: &Value, what: &str) -> Result<(), GraphError> {
    match body.get("success") {
        Some(Value::Bool(true)) => Ok(()),
        _ => Err(decode(format!("{what} did not report success"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The exact body of reference/meta-platform.md §6.2.
    const VALID: &str = r#"{"data":{"app_id":"123","type":"PAGE","application":"My CRM","profile_id":"PAGE_ID",
    "is_valid":true,"issued_at":1767225600,"expires_at":0,"data_access_expires_at":1775001600,
    "scopes":["pages_messaging","pages_manage_metadata"],
    "granular_scopes":[{"scope":"pages_messaging","target_ids":["PAGE_ID"]}],
    "user_id":"10215"}}"#;

    #[test]
    fn debug_token_valid_body() {
        let info = token_info_from(&serde_json::from_str(VALID).unwrap()).unwrap();
        assert_eq!(
            info,
            TokenInfo {
                is_valid: true,
                token_type: TokenType::Page,
                app_id: "123".into(),
                profile_id: Some("PAGE_ID".into()),
                user_id: Some("10215".into()),
                scopes: vec!["pages_messaging".into(), "pages_manage_metadata".into()],
                granular_scopes: vec![GranularScope {
                    scope: "pages_messaging".into(),
                    target_ids: vec!["PAGE_ID".into()]
                }],
                expires_at: None,
                data_access_expires_at: Some(1775001600),
                error: None,
            }
        );
    }

    #[test]
    fn debug_token_invalid_body() {
        let body = json!({"data":{"app_id":"123","type":"USER","is_valid":false,"expires_at":1767225600,
            "scopes":[],"error":{"code":190,"message":"Session has expired","subcode":463},"user_id":"10215"}});
        let info = token_info_from(&body).unwrap();
        assert!(!info.is_valid);
        assert_eq!(info.token_type, TokenType::User);
        assert_eq!(info.expires_at, Some(1767225600));
        assert_eq!(info.error, Some((190, Some(463))));
        assert!(info.granular_scopes.is_empty());

        let minimal = token_info_from(&json!({"data":{"is_valid":false,"error":{"code":190}}})).unwrap();
        assert_eq!(minimal.token_type, TokenType::Other(String::new()));
        assert_eq!(minimal.error, Some((190, None)));
        assert!(token_info_from(&json!({"nodata":1})).is_err());
    }

    #[test]
    fn token_types() {
        assert_eq!(TokenType::parse("SYSTEM_USER"), TokenType::SystemUser);
        assert_eq!(TokenType::parse("APP"), TokenType::App);
        assert_eq!(TokenType::parse("WEIRD"), TokenType::Other("WEIRD".into()));
    }

    #[test]
    fn issued_token_decoding() {
        let t =
            issued_token_from(json!({"access_token":"EAAGxyz","token_type":"bearer","expires_in":5183944}))
                .unwrap();
        assert_eq!(t.token.expose(), "EAAGxyz");
        assert_eq!(t.expires_in, Some(5183944));
        let t = issued_token_from(json!({"access_token":"EAAGxyz","token_type":"bearer"})).unwrap();
        assert_eq!(t.expires_in, None);
        assert!(issued_token_from(json!({"token_type":"bearer"})).is_err());
        assert!(!format!("{t:?}").contains("EAAGxyz"));
    }

    #[test]
    fn page_accounts_skip_entries_without_token() {
        let mut body = json!({"data":[
            {"id":"1","name":"One","access_token":"PAGE1TOKEN","tasks":["MANAGE","MESSAGING"]},
            {"id":"2","name":"No token"}]});
        let pages = page_accounts_from(&mut body).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].id, "1");
        assert_eq!(pages[0].tasks, vec!["MANAGE", "MESSAGING"]);
        assert_eq!(pages[0].token.expose(), "PAGE1TOKEN");
        let printed = format!("{:?}", pages[0]);
        assert!(!printed.contains("PAGE1TOKEN"), "{printed}");
    }

    #[test]
    fn subscribed_apps_page_and_whatsapp_shapes() {
        let page = json!({"data":[{"id":"999","name":"Other","subscribed_fields":["feed"]},
                                  {"id":"123","name":"Us","subscribed_fields":["messages","feed"]}]});
        assert_eq!(
            subscribed_fields_from(&page, "123").unwrap(),
            Some(vec!["messages".to_owned(), "feed".to_owned()])
        );
        assert_eq!(subscribed_fields_from(&page, "555").unwrap(), None);
        let waba = json!({"data":[{"whatsapp_business_api_data":{"id":"123","link":"x","name":"Us"}}]});
        assert_eq!(subscribed_fields_from(&waba, "123").unwrap(), Some(vec![]));
    }
}
