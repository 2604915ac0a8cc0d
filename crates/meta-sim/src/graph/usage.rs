//! Rate-limit simulation: injected throttles (codes 4/17/32/613/800xx) and the usage headers
//! of meta-platform.md §8.2 (`X-App-Usage`, `X-Business-Use-Case-Usage`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::errors::GraphError;

/// `X-App-Usage`.
pub const APP_USAGE: &str = "x-app-usage";
/// `X-Business-Use-Case-Usage`.
pub const BUC_USAGE: &str = "x-business-use-case-usage";

/// One injected throttle.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Throttle {
    object_id: String,
    code: u32,
    minutes: u32,
    /// `None` = until cleared.
    remaining: Option<u32>,
}

/// A call that was throttled: what the usage headers must say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// The object the throttle was set on.
    pub object_id: String,
    /// Error code.
    pub code: u32,
    /// `estimated_time_to_regain_access`, minutes.
    pub minutes: u32,
    /// BUC `type` of the object (used for codes whose type the code does not imply).
    pub object_usage_type: &'static str,
}

/// Throttles and reported usage.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    throttles: Vec<Throttle>,
    app_pct: Option<u32>,
    /// object id → (BUC type, percentage).
    buc: BTreeMap<String, (&'static str, u32)>,
}

/// Throttles that apply to every call, whatever object they were set on.
fn is_app_level(code: u32) -> bool {
    code == 4
}

impl Usage {
    /// Throttle the next `calls` calls (all when `None`) touching `object_id`.
    pub fn throttle(&mut self, object_id: &str, code: u32, minutes: u32, calls: Option<u32>) {
        self.throttles.retain(|t| t.object_id != object_id);
        if calls != Some(0) {
            self.throttles.push(Throttle {
                object_id: object_id.to_owned(),
                code,
                minutes,
                remaining: calls,
            });
        }
    }

    /// Remove the throttle on `object_id`.
    pub fn clear(&mut self, object_id: &str) {
        self.throttles.retain(|t| t.object_id != object_id);
    }

    /// Report `pct` for the app (`None`) or a business object.
    pub fn set(&mut self, object_id: Option<&str>, usage_type: &'static str, pct: u32) {
        match object_id {
            None => self.app_pct = Some(pct),
            Some(id) => {
                self.buc.insert(id.to_owned(), (usage_type, pct));
            }
        }
    }

    /// Consume one call against the throttles: `Err` when a throttle applies to any of the
    /// `touched` objects (or is app-level). `usage_type` tells the BUC type of an object.
    pub fn check(
        &mut self,
        touched: &[&str],
        usage_type: impl Fn(&str) -> &'static str,
    ) -> Result<(), Throttled> {
        let Some(i) = self
            .throttles
            .iter()
            .position(|t| is_app_level(t.code) || touched.contains(&t.object_id.as_str()))
        else {
            return Ok(());
        };
        let t = self.throttles[i].clone();
        match t.remaining {
            Some(n) if n <= 1 => {
                self.throttles.remove(i);
            }
            Some(n) => self.throttles[i].remaining = Some(n - 1),
            None => {}
        }
        Err(Throttled {
            object_usage_type: usage_type(&t.object_id),
            object_id: t.object_id,
            code: t.code,
            minutes: t.minutes,
        })
    }

    /// The usage headers for a response: everything set with `set`, plus a 100 % entry with
    /// `estimated_time_to_regain_access` for a throttled call. App/user-level throttles (4, 17)
    /// show in `X-App-Usage`, whose documented shape has no time-to-regain field.
    pub fn headers(&self, throttled: Option<&Throttled>) -> Vec<(&'static str, String)> {
        let mut app = self.app_pct;
        let mut buc: BTreeMap<String, Value> = self
            .buc
            .iter()
            .map(|(id, (ty, pct))| (id.clone(), json!([buc_entry(ty, *pct, 0)])))
            .collect();
        if let Some(t) = throttled {
            if matches!(t.code, 4 | 17) {
                app = Some(app.map_or(100, |p| p.max(100)));
            } else {
                let ty = buc_type_for_code(t.code).unwrap_or(t.object_usage_type);
                buc.insert(t.object_id.clone(), json!([buc_entry(ty, 100, t.minutes)]));
            }
        }
        let mut out = Vec::new();
        if let Some(p) = app {
            out.push((
                APP_USAGE,
                json!({"call_count": p, "total_cputime": p, "total_time": p}).to_string(),
            ));
        }
        if !buc.is_empty() {
            out.push((BUC_USAGE, Value::Object(buc.into_iter().collect()).to_string()));
        }
        out
    }
}

fn buc_entry(ty: &str, pct: u32, minutes: u32) -> Value {
    json!({
        "type": ty,
        "call_count": pct,
        "total_cputime": pct,
        "total_time": pct,
        "estimated_time_to_regain_access": minutes,
    })
}

fn buc_type_for_code(code: u32) -> Option<&'static str> {
    match code {
        80001 => Some("pages"),
        80002 => Some("instagram"),
        80006 => Some("messenger"),
        80007 => Some("whatsapp_business_management"),
        _ => None,
    }
}

/// The error a throttled call gets (always `is_transient`, HTTP 400).
pub fn throttle_error(code: u32) -> GraphError {
    const MORE: &str = "Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.";
    let msg = match code {
        4 => "(#4) Application request limit reached".to_owned(),
        17 => "(#17) User request limit reached".to_owned(),
        32 => "(#32) Page request limit reached".to_owned(),
        613 => "(#613) Calls to this api have exceeded the rate limit.".to_owned(),
        80001 => format!("(#80001) There have been too many calls to this Page account. {MORE}"),
        80002 => format!("(#80002) There have been too many calls to this Instagram account. {MORE}"),
        80006 => {
            format!("(#80006) There have been too many messenger api calls to this Page account. {MORE}")
        }
        80007 => format!("(#80007) There have been too many calls to this WhatsApp Business account. {MORE}"),
        other => format!("(#{other}) Rate limit reached. {MORE}"),
    };
    GraphError::new(code, msg).transient()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(_: &str) -> &'static str {
        "pages"
    }

    #[test]
    fn throttle_applies_to_touched_objects_for_n_calls() {
        let mut u = Usage::default();
        u.throttle("P1", 32, 5, Some(2));
        assert!(u.check(&["P2"], pages).is_ok());
        assert_eq!(u.check(&["P1", "U"], pages).unwrap_err().minutes, 5);
        assert!(u.check(&["P1"], pages).is_err());
        assert!(u.check(&["P1"], pages).is_ok(), "cleared after 2 calls");
    }

    #[test]
    fn app_level_throttle_hits_everything_until_cleared() {
        let mut u = Usage::default();
        u.throttle("app", 4, 1, None);
        for _ in 0..3 {
            assert_eq!(u.check(&[], pages).unwrap_err().code, 4);
        }
        u.clear("app");
        assert!(u.check(&[], pages).is_ok());
    }

    #[test]
    fn headers_merge_set_usage_and_throttle() {
        let mut u = Usage::default();
        assert!(u.headers(None).is_empty());
        u.set(None, "pages", 42);
        u.set(Some("W"), "whatsapp_business_management", 80);
        let t = Throttled {
            object_id: "P".into(),
            code: 80006,
            minutes: 7,
            object_usage_type: "pages",
        };
        let h: BTreeMap<_, _> = u.headers(Some(&t)).into_iter().collect();
        let app: Value = serde_json::from_str(&h[APP_USAGE]).unwrap();
        assert_eq!(app["call_count"], 42);
        let buc: Value = serde_json::from_str(&h[BUC_USAGE]).unwrap();
        assert_eq!(buc["W"][0]["call_count"], 80);
        assert_eq!(buc["P"][0]["type"], "messenger");
        assert_eq!(buc["P"][0]["estimated_time_to_regain_access"], 7);
    }
}
