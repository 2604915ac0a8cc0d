//! One webhook POST: `{"object": ..., "entry": [...]}`, composed from items.

use serde_json::{Map, Value, json};

use super::encode::{Encoding, encode};

/// Top-level `object` values Meta sends.
pub mod object {
    /// Messenger and Page feed.
    pub const PAGE: &str = "page";
    /// Instagram messaging and comments.
    pub const INSTAGRAM: &str = "instagram";
    /// WhatsApp Cloud API.
    pub const WHATSAPP: &str = "whatsapp_business_account";
}

/// Which array of an entry an item goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// `entry[].messaging[]`: events for the thread owner.
    Messaging,
    /// `entry[].standby[]`: the same events, for apps that do not own the thread.
    Standby,
    /// `entry[].changes[]`: `{field, value}` pairs (feed, comments, WhatsApp).
    Changes,
}

impl Slot {
    fn key(self) -> &'static str {
        match self {
            Slot::Messaging => "messaging",
            Slot::Standby => "standby",
            Slot::Changes => "changes",
        }
    }
}

/// One event ready to be placed in a delivery: it knows its `object`, the `entry[].id` it
/// belongs to (Page, IG account or WABA) and which array of the entry holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Top-level `object` this item belongs under.
    pub object: String,
    /// `entry[].id`.
    pub entry_id: String,
    /// `entry[].time` to use if this item opens the entry (ms for messaging, s for feed,
    /// absent for WhatsApp).
    pub entry_time: Option<i64>,
    /// Which array of the entry.
    pub slot: Slot,
    /// The JSON placed in that array.
    pub body: Value,
}

impl Item {
    /// A raw item, for shapes no builder covers (deliberately unknown events included).
    pub fn raw(object: impl Into<String>, entry_id: impl Into<String>, slot: Slot, body: Value) -> Self {
        Self {
            object: object.into(),
            entry_id: entry_id.into(),
            entry_time: None,
            slot,
            body,
        }
    }

    /// A raw `changes[]` item `{"field": field, "value": value}`.
    pub fn change(object: impl Into<String>, entry_id: impl Into<String>, field: &str, value: Value) -> Self {
        Self::raw(
            object,
            entry_id,
            Slot::Changes,
            json!({ "field": field, "value": value }),
        )
    }

    /// Set `entry_time`.
    pub fn with_entry_time(mut self, time: Option<i64>) -> Self {
        self.entry_time = time;
        self
    }

    /// A delivery holding just this item.
    pub fn into_delivery(self) -> Delivery {
        let mut d = Delivery::new(self.object.clone());
        d.push_unchecked(self);
        d
    }
}

/// Errors composing a delivery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ComposeError {
    /// Meta never mixes objects in one POST; use [`Delivery::new`] + [`Entry`] to do it on
    /// purpose.
    #[error("item for object `{item}` cannot go into a `{delivery}` delivery")]
    ObjectMismatch {
        /// The delivery's object.
        delivery: String,
        /// The item's object.
        item: String,
    },
}

/// One `entry[]` element.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// Page id, IG account id or WABA id.
    pub id: String,
    /// `time`; omitted when `None`.
    pub time: Option<i64>,
    /// `messaging[]` (omitted when empty).
    pub messaging: Vec<Value>,
    /// `standby[]` (omitted when empty).
    pub standby: Vec<Value>,
    /// `changes[]` (omitted when empty).
    pub changes: Vec<Value>,
    /// Extra keys, e.g. deliberately unknown ones.
    pub extra: Map<String, Value>,
}

impl Entry {
    /// An empty entry for `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    fn slot_mut(&mut self, slot: Slot) -> &mut Vec<Value> {
        match slot {
            Slot::Messaging => &mut self.messaging,
            Slot::Standby => &mut self.standby,
            Slot::Changes => &mut self.changes,
        }
    }

    /// JSON form.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.id.clone()));
        if let Some(t) = self.time {
            m.insert("time".into(), json!(t));
        }
        for slot in [Slot::Messaging, Slot::Standby, Slot::Changes] {
            let items = match slot {
                Slot::Messaging => &self.messaging,
                Slot::Standby => &self.standby,
                Slot::Changes => &self.changes,
            };
            if !items.is_empty() {
                m.insert(slot.key().into(), Value::Array(items.clone()));
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// The payload of one POST. May hold several entries (several Pages or WABAs) and several
/// items per entry, as Meta batches them.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Top-level `object`.
    pub object: String,
    /// `entry[]`, in order.
    pub entries: Vec<Entry>,
}

impl Delivery {
    /// An empty delivery for `object` (any string, so unknown objects can be sent).
    pub fn new(object: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            entries: Vec::new(),
        }
    }

    /// Compose items into one delivery. Items for the same `entry_id` that are adjacent share an
    /// entry; a later item for an earlier id joins that earlier entry, keeping item order within
    /// each entry.
    pub fn from_items(items: impl IntoIterator<Item = Item>) -> Result<Self, ComposeError> {
        let mut items = items.into_iter().peekable();
        let object = items.peek().map(|i| i.object.clone()).unwrap_or_default();
        let mut d = Delivery::new(object);
        for item in items {
            d.push(item)?;
        }
        Ok(d)
    }

    /// Add an item to the entry for its `entry_id` (created if missing).
    pub fn push(&mut self, item: Item) -> Result<&mut Self, ComposeError> {
        if item.object != self.object {
            return Err(ComposeError::ObjectMismatch {
                delivery: self.object.clone(),
                item: item.object,
            });
        }
        self.push_unchecked(item);
        Ok(self)
    }

    fn push_unchecked(&mut self, item: Item) {
        let idx = match self.entries.iter().position(|e| e.id == item.entry_id) {
            Some(i) => i,
            None => {
                let mut e = Entry::new(item.entry_id.clone());
                e.time = item.entry_time;
                self.entries.push(e);
                self.entries.len() - 1
            }
        };
        if let Some(entry) = self.entries.get_mut(idx) {
            entry.slot_mut(item.slot).push(item.body);
        }
    }

    /// Append a hand-built entry (e.g. with unknown keys, or a second entry for the same id).
    pub fn with_entry(mut self, entry: Entry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Number of items across all entries and slots.
    pub fn item_count(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.messaging.len() + e.standby.len() + e.changes.len())
            .sum()
    }

    /// JSON form.
    pub fn to_value(&self) -> Value {
        json!({
            "object": self.object,
            "entry": self.entries.iter().map(Entry::to_value).collect::<Vec<_>>(),
        })
    }

    /// Body bytes under `encoding` ([`Encoding::META`] for the real thing).
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        encode(&self.to_value(), encoding)
    }

    /// Split into batches of at most `max_items` items each (Meta: ≤ 1000 per POST), keeping
    /// order. `max_items == 0` is treated as 1.
    pub fn split(&self, max_items: usize) -> Vec<Delivery> {
        let max = max_items.max(1);
        let mut out = Vec::new();
        let mut current = Delivery::new(self.object.clone());
        let mut count = 0;
        for entry in &self.entries {
            for (slot, items) in [
                (Slot::Messaging, &entry.messaging),
                (Slot::Standby, &entry.standby),
                (Slot::Changes, &entry.changes),
            ] {
                for body in items {
                    if count == max {
                        out.push(std::mem::replace(
                            &mut current,
                            Delivery::new(self.object.clone()),
                        ));
                        count = 0;
                    }
                    let item = Item {
                        object: self.object.clone(),
                        entry_id: entry.id.clone(),
                        entry_time: entry.time,
                        slot,
                        body: body.clone(),
                    };
                    current.push_unchecked(item);
                    count += 1;
                }
            }
        }
        if count > 0 {
            out.push(current);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(entry: &str, n: i64) -> Item {
        Item::raw(object::PAGE, entry, Slot::Messaging, json!({ "n": n })).with_entry_time(Some(n))
    }

    #[test]
    fn items_group_by_entry_id_in_order() {
        let d = Delivery::from_items([item("p1", 1), item("p2", 2), item("p1", 3)]).unwrap();
        let v = d.to_value();
        assert_eq!(v["object"], "page");
        assert_eq!(v["entry"].as_array().unwrap().len(), 2);
        assert_eq!(v["entry"][0]["id"], "p1");
        assert_eq!(v["entry"][0]["time"], 1);
        assert_eq!(v["entry"][0]["messaging"], json!([{"n": 1}, {"n": 3}]));
        assert_eq!(v["entry"][1]["messaging"], json!([{"n": 2}]));
        assert!(v["entry"][0].get("changes").is_none());
        assert_eq!(d.item_count(), 3);
    }

    #[test]
    fn mixing_objects_is_refused() {
        let ig = Item::raw(object::INSTAGRAM, "ig", Slot::Messaging, json!({}));
        assert_eq!(
            Delivery::from_items([item("p1", 1), ig]),
            Err(ComposeError::ObjectMismatch {
                delivery: "page".into(),
                item: "instagram".into()
            })
        );
    }

    #[test]
    fn split_respects_max_items() {
        let d = Delivery::from_items((0..5).map(|n| item(if n % 2 == 0 { "a" } else { "b" }, n))).unwrap();
        let parts = d.split(2);
        assert_eq!(
            parts.iter().map(Delivery::item_count).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(d.split(1000).len(), 1);
    }
}
