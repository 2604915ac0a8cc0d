//! WhatsApp message templates: the per-WABA catalogue, `GET /{v}/{waba-id}/message_templates`,
//! the checks a template send goes through (132000/132001/132015/132016, meta-platform.md §3.4)
//! and the `message_template_status_update` webhook when a template's status changes.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::accounts::{paged, window};
use super::errors::GraphError;
use super::nodes::{render, requested};
use super::outbox::Chain;
use super::request::{GraphRequest, Reply};
use super::world::{Auth, Node, World, digits};
use super::{GraphSim, WorldError, must};
use crate::webhooks::delivery::{Item, object};

/// A template's review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    /// Sendable.
    Approved,
    /// In review: not sendable (132001, as if missing).
    Pending,
    /// Refused in review: not sendable (132001).
    Rejected,
    /// Paused for low quality (132015).
    Paused,
    /// Paused too often, disabled for good (132016).
    Disabled,
}

impl TemplateStatus {
    /// Wire value (`APPROVED`…), also the webhook's `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::Pending => "PENDING",
            Self::Rejected => "REJECTED",
            Self::Paused => "PAUSED",
            Self::Disabled => "DISABLED",
        }
    }
}

/// A template's category (pricing follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateCategory {
    /// Promotions; always billed.
    Marketing,
    /// Transaction updates; free inside the customer-service window.
    Utility,
    /// One-time passwords.
    Authentication,
}

impl TemplateCategory {
    /// Wire value (`MARKETING`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "MARKETING",
            Self::Utility => "UTILITY",
            Self::Authentication => "AUTHENTICATION",
        }
    }
}

/// One template in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimTemplate {
    /// Numeric id.
    pub id: String,
    /// Owning WABA.
    pub waba_id: String,
    /// `name`.
    pub name: String,
    /// `language` (`en_US`).
    pub language: String,
    /// `category`.
    pub category: TemplateCategory,
    /// `status`.
    pub status: TemplateStatus,
    /// Number of `{{n}}` placeholders in the body.
    pub body_params: usize,
}

impl SimTemplate {
    fn body_text(&self) -> String {
        let mut text = format!("{} from us", self.name.replace('_', " "));
        for i in 1..=self.body_params {
            text.push_str(&format!(" {{{{{i}}}}}"));
        }
        text
    }

    fn components(&self) -> Value {
        let mut body = json!({"type": "BODY", "text": self.body_text()});
        if self.body_params > 0 {
            let examples: Vec<String> = (1..=self.body_params).map(|i| format!("example {i}")).collect();
            body["example"] = json!({ "body_text": [examples] });
        }
        json!([body])
    }
}

/// Every template of every WABA.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    list: Vec<SimTemplate>,
}

impl Templates {
    /// Templates of a WABA, in creation order.
    pub fn of(&self, waba_id: &str) -> Vec<&SimTemplate> {
        self.list.iter().filter(|t| t.waba_id == waba_id).collect()
    }

    /// What a send of `template` (the request's `template` object) on `waba_id` uses, or the
    /// error Meta answers.
    pub fn check_send(&self, waba_id: &str, template: &Value) -> Result<&SimTemplate, GraphError> {
        let name = template
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::missing_param("template['name']"))?;
        let language = template
            .get("language")
            .and_then(|l| l.get("code").or(Some(l)))
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::missing_param("template['language']"))?;
        let found = self
            .list
            .iter()
            .find(|t| t.waba_id == waba_id && t.name == name && t.language == language)
            .ok_or_else(|| GraphError::template_missing(name, language))?;
        match found.status {
            TemplateStatus::Approved => {}
            TemplateStatus::Pending | TemplateStatus::Rejected => {
                return Err(GraphError::template_missing(name, language));
            }
            TemplateStatus::Paused => return Err(GraphError::template_paused(name)),
            TemplateStatus::Disabled => return Err(GraphError::template_disabled(name)),
        }
        let got: usize = template
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("body"))
            })
            .map(|c| c.get("parameters").and_then(Value::as_array).map_or(0, Vec::len))
            .sum();
        if got != found.body_params {
            return Err(GraphError::template_param_count(got, found.body_params));
        }
        Ok(found)
    }
}

impl World {
    /// Add a template to a WABA; returns its id.
    pub fn add_template(
        &mut self,
        waba_id: &str,
        name: &str,
        language: &str,
        category: TemplateCategory,
        status: TemplateStatus,
        body_params: usize,
    ) -> Result<String, WorldError> {
        if self.waba(waba_id).is_none() {
            return Err(WorldError::Unknown {
                what: "waba",
                id: waba_id.to_owned(),
            });
        }
        let id = digits("1", 16);
        self.templates.list.push(SimTemplate {
            id: id.clone(),
            waba_id: waba_id.to_owned(),
            name: name.to_owned(),
            language: language.to_owned(),
            category,
            status,
            body_params,
        });
        Ok(id)
    }

    /// Change a template's status and queue the `message_template_status_update` webhook.
    pub fn set_template_status(
        &mut self,
        template_id: &str,
        status: TemplateStatus,
        reason: Option<&str>,
    ) -> Result<(), WorldError> {
        let Some(t) = self.templates.list.iter_mut().find(|t| t.id == template_id) else {
            return Err(WorldError::Unknown {
                what: "template",
                id: template_id.to_owned(),
            });
        };
        t.status = status;
        let t = t.clone();
        let item = status_update(&t, reason, self.now());
        let delay = self.outbox.timing.first;
        self.schedule(Chain::single(delay, item.into_delivery()));
        Ok(())
    }
}

/// The `message_template_status_update` change. Shape from Meta's webhook reference as best
/// known: `message_template_id` is a number, `reason` is `"NONE"` when there is none; the
/// `message_template_category` key (newer webhook versions) and `other_info` on pauses are
/// reproduced from memory (UNCERTAIN).
pub fn status_update(t: &SimTemplate, reason: Option<&str>, now_s: i64) -> Item {
    let id =
        t.id.parse::<u64>()
            .map_or_else(|_| Value::from(t.id.clone()), Value::from);
    let mut value = json!({
        "event": t.status.as_str(),
        "message_template_id": id,
        "message_template_name": t.name,
        "message_template_language": t.language,
        "message_template_category": t.category.as_str(),
        "reason": reason.unwrap_or("NONE"),
    });
    if t.status == TemplateStatus::Paused {
        value["other_info"] = json!({
            "title": "FIRST_PAUSE",
            "description": "Your WhatsApp message template has been paused for 3 hours because it had issues.",
        });
    }
    Item::change(
        object::WHATSAPP,
        &t.waba_id,
        "message_template_status_update",
        value,
    )
    .with_entry_time(Some(now_s))
}

const DEFAULT_FIELDS: &[&str] = &[
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
];

/// `GET /{v}/{waba-id}/message_templates` with the `name`, `status`, `language` and
/// `category` filters and cursor paging.
pub fn list(world: &World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    let Node::Waba(waba_id) = node else {
        return Err(GraphError::nonexisting_field(
            "message_templates",
            node.type_name(),
        ));
    };
    if !world.can_access_waba(auth, waba_id) {
        return Err(GraphError::unsupported(&req.method, waba_id));
    }
    if !auth.has("whatsapp_business_management") {
        return Err(GraphError::missing_permission("whatsapp_business_management"));
    }
    let fields = requested(req, DEFAULT_FIELDS)?;
    let matches = |t: &&SimTemplate| {
        req.param("name").is_none_or(|n| t.name.contains(n))
            && req.param("status").is_none_or(|s| t.status.as_str() == s)
            && req.param("language").is_none_or(|l| t.language == l)
            && req.param("category").is_none_or(|c| t.category.as_str() == c)
    };
    let templates: Vec<&SimTemplate> = world.templates.of(waba_id).into_iter().filter(matches).collect();
    let ids: Vec<String> = templates.iter().map(|t| t.id.clone()).collect();
    let (start, end) = window(req, &ids)?;
    let data = templates[start..end]
        .iter()
        .map(|t| {
            render(&fields, &t.id, |f| {
                Ok(Some(match f.name.as_str() {
                    "id" => return Ok(None),
                    "name" => t.name.clone().into(),
                    "language" => t.language.clone().into(),
                    "status" => t.status.as_str().into(),
                    "category" => t.category.as_str().into(),
                    "components" => t.components(),
                    "parameter_format" => "POSITIONAL".into(),
                    "rejected_reason" => "NONE".into(),
                    "quality_score" => json!({"score": "UNKNOWN"}),
                    other => return Err(GraphError::nonexisting_field(other, "WhatsAppMessageTemplate")),
                }))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::Json(paged(req, data, &ids, start, end)))
}

impl GraphSim {
    /// Add a template to a WABA; returns its id.
    ///
    /// # Panics
    /// On an unknown WABA id.
    pub fn add_template(
        &self,
        waba_id: &str,
        name: &str,
        language: &str,
        category: TemplateCategory,
        status: TemplateStatus,
        body_params: usize,
    ) -> String {
        must(
            self.lock()
                .add_template(waba_id, name, language, category, status, body_params),
            "add_template",
        )
    }

    /// Change a template's status (Meta's review finished, quality dropped…) and send the
    /// WABA's `message_template_status_update` webhook to the webhook target. `reason`
    /// defaults to `"NONE"`.
    ///
    /// # Panics
    /// On an unknown template id.
    pub fn set_template_status(&self, template_id: &str, status: TemplateStatus, reason: Option<&str>) {
        must(
            self.lock().set_template_status(template_id, status, reason),
            "set_template_status",
        );
        self.flush_webhooks();
    }

    /// The templates of a WABA, in creation order.
    pub fn templates(&self, waba_id: &str) -> Vec<SimTemplate> {
        self.lock().templates.of(waba_id).into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Templates {
        let mk = |name: &str, status, params| SimTemplate {
            id: format!("id_{name}"),
            waba_id: "w".into(),
            name: name.into(),
            language: "en_US".into(),
            category: TemplateCategory::Utility,
            status,
            body_params: params,
        };
        Templates {
            list: vec![
                mk("order_update", TemplateStatus::Approved, 1),
                mk("pending_one", TemplateStatus::Pending, 0),
                mk("paused_one", TemplateStatus::Paused, 0),
                mk("disabled_one", TemplateStatus::Disabled, 0),
            ],
        }
    }

    fn code(r: Result<&SimTemplate, GraphError>) -> u32 {
        r.map(|_| 0).unwrap_or_else(|e| e.code)
    }

    #[test]
    fn sends_need_an_approved_template_in_that_language_with_the_right_params() {
        let s = store();
        let ok = json!({"name": "order_update", "language": {"code": "en_US"},
                        "components": [{"type": "body", "parameters": [{"type": "text", "text": "#77"}]}]});
        assert_eq!(code(s.check_send("w", &ok)), 0);
        assert_eq!(code(s.check_send("other", &ok)), 132_001);
        let no_params = json!({"name": "order_update", "language": {"code": "en_US"}});
        assert_eq!(code(s.check_send("w", &no_params)), 132_000);
        let pt =
            json!({"name": "order_update", "language": {"code": "pt_BR"}, "components": ok["components"]});
        assert_eq!(code(s.check_send("w", &pt)), 132_001);
        for (name, want) in [
            ("pending_one", 132_001),
            ("paused_one", 132_015),
            ("disabled_one", 132_016),
            ("nope", 132_001),
        ] {
            let t = json!({"name": name, "language": {"code": "en_US"}});
            assert_eq!(code(s.check_send("w", &t)), want, "{name}");
        }
        assert_eq!(code(s.check_send("w", &json!({"name": "x"}))), 100);
    }

    #[test]
    fn status_update_shape() {
        let mut t = store().list[0].clone();
        t.id = "1234567890123456".into();
        t.status = TemplateStatus::Paused;
        let v = status_update(&t, None, 1_767_225_600).into_delivery().to_value();
        assert_eq!(v["object"], "whatsapp_business_account");
        assert_eq!(v["entry"][0]["time"], 1_767_225_600);
        let ch = &v["entry"][0]["changes"][0];
        assert_eq!(ch["field"], "message_template_status_update");
        assert_eq!(ch["value"]["event"], "PAUSED");
        assert_eq!(ch["value"]["message_template_id"], 1_234_567_890_123_456_u64);
        assert_eq!(ch["value"]["message_template_language"], "en_US");
        assert_eq!(ch["value"]["reason"], "NONE");
        assert_eq!(ch["value"]["other_info"]["title"], "FIRST_PAUSE");
        assert_eq!(t.components()[0]["text"], "order update from us {{1}}");
    }
}
