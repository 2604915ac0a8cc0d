//! WhatsApp template sync (issue 5): the WABA-level `message_template_status_update` change.
//!
//! Shape (meta-platform.md §2 and the simulator; `message_template_category` and `other_info`
//! are UNCERTAIN): `{"event":"APPROVED","message_template_id":123,"message_template_name":"n",
//! "message_template_language":"en_US","reason":"NONE"}`. The event names the WABA (`entry.id`):
//! templates belong to it, not to one phone number.

use scifer_proto::events::v1::{TemplateStatusUpdate, meta_event::Kind};
use serde_json::Value;

use super::{Channel, Origin, Sink, id_string, secs_to_ms};

pub(super) const FIELD: &str = "message_template_status_update";

/// Splits one `message_template_status_update` change of WABA `waba_id`. The event id is
/// `wa:template_status:{template id}:{event}:{entry time}`: a template moves through the same
/// status more than once (paused, reinstated, paused again), so the time tells them apart, and
/// Meta's retries repeat the entry time. Without an entry time the id is hashed over the item.
pub(super) fn split_status_update(sink: &mut Sink<'_>, waba_id: &str, entry_time: Option<i64>, item: &Value) {
    let value = item.get("value").unwrap_or(&Value::Null);
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let template_id = value
        .get("message_template_id")
        .and_then(id_string)
        .unwrap_or_default();
    let status = text("event");
    if template_id.is_empty() || status.is_empty() {
        let reason = "message_template_status_update without message_template_id or event";
        sink.unhandled("wa", waba_id, FIELD, reason, item);
        return;
    }
    let reason = match text("reason") {
        r if r.eq_ignore_ascii_case("NONE") => String::new(),
        r => r,
    };
    let origin = Origin {
        channel: Channel::WhatsApp,
        account_id: waba_id,
        business_account_id: waba_id,
        standby: false,
    };
    let time = entry_time.map(|t| t.to_string()).unwrap_or_default();
    let event_id = origin.event_id("template_status", &[&template_id, &status, &time], item);
    let event = TemplateStatusUpdate {
        waba_id: waba_id.to_owned(),
        template_id,
        name: text("message_template_name"),
        language: text("message_template_language"),
        status,
        reason,
        category: text("message_template_category"),
        at_ms: entry_time.map(secs_to_ms).unwrap_or(0),
    };
    sink.event(&origin, event_id, item, Kind::TemplateStatus(event));
}
