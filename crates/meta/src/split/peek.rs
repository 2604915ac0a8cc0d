//! A cheap look at a delivery's `object` for the ingest hot path.

use std::fmt;

use scifer_proto::events::v1::ChannelKind;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Channel, MalformedDelivery};

/// Validates that `body` is a JSON object and returns the channel its `object` names
/// (`page` → Messenger, `instagram` → Instagram, `whatsapp_business_account` → WhatsApp);
/// `None` for any other or a missing `object`.
///
/// Accepts exactly the bodies [`split_delivery`](super::split_delivery) accepts, so a body that
/// passes here will not be quarantined later as malformed. It builds no tree and allocates only
/// for top-level keys, but it does read every token: serde's `IgnoredAny` would be faster yet
/// skips the UTF-8, surrogate-escape, number-range and nesting-depth checks of a full parse.
pub fn peek_object(body: &[u8]) -> Result<Option<ChannelKind>, MalformedDelivery> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = de
        .deserialize_any(TopVisitor)
        .map_err(MalformedDelivery::NotJson)?;
    de.end().map_err(MalformedDelivery::NotJson)?;
    match top {
        Top::Object(kind) => Ok(kind),
        Top::Other(found) => Err(MalformedDelivery::NotAnObject { found }),
    }
}

enum Top {
    Object(Option<ChannelKind>),
    Other(&'static str),
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut kind = None;
        // Later duplicates win, as they do when the body is parsed into a `Value`.
        while let Some(key) = map.next_key::<String>()? {
            if key == "object" {
                kind = map.next_value_seed(ObjectSeed)?;
            } else {
                map.next_value_seed(Validate)?;
            }
        }
        Ok(Top::Object(kind))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
        drain_seq(seq)?;
        Ok(Top::Other("array"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other("number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other("string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::Other("null"))
    }
}

/// The value of `object`: a known channel when it is one of Meta's object strings.
struct ObjectSeed;

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<ChannelKind>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Option<ChannelKind>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Channel::from_object(v).map(Channel::kind))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map)?;
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads any value through `deserialize_any`, so serde_json applies the same checks as when
/// building a `Value`, and keeps nothing.
struct Validate;

impl<'de> DeserializeSeed<'de> for Validate {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(ValidateVisitor)
    }
}

impl<'de> de::Deserialize<'de> for Validate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValidateVisitor)?;
        Ok(Validate)
    }
}

struct ValidateVisitor;

impl<'de> Visitor<'de> for ValidateVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        drain_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<Validate>()?.is_some() {
        map.next_value_seed(Validate)?;
    }
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Validate>()?.is_some() {}
    Ok(())
}
