//! An order-preserving JSON tree.
//!
//! `serde_json::Value` sorts object members unless the `preserve_order` feature is on, and
//! turning that feature on here would switch it on for every crate of the workspace (cargo
//! unifies features), changing their output. This small tree keeps members in input order
//! (as a `Vec`, which is also faster to walk than a map for FHIR's small objects) and leans
//! on serde_json for parsing, escaping and number formatting.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value with object members in input order.
#[derive(Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
    /// Marks a value the walker removed; never parsed, never written (members and array
    /// items holding it are dropped before output).
    Gone,
}

/// `Debug` shows the shape only: values may be PHI.
impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(_) => f.write_str("bool"),
            Json::Num(_) => f.write_str("number"),
            Json::Str(s) => write!(f, "string({} bytes)", s.len()),
            Json::Arr(a) => write!(f, "array({})", a.len()),
            Json::Obj(o) => write!(f, "object({})", o.len()),
            Json::Gone => f.write_str("gone"),
        }
    }
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Parses one JSON document.
    pub fn from_slice(bytes: &[u8]) -> Result<Json, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

pub(crate) struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Num(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Num)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Json::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, x)) = map.next_entry::<String, Json>()? {
            v.push((k, x));
        }
        Ok(Json::Obj(v))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null | Json::Gone => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Num(n) => n.serialize(s),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for x in a.iter().filter(|x| !matches!(x, Json::Gone)) {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Json::Obj(o) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in o.iter().filter(|(_, v)| !matches!(v, Json::Gone)) {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_member_order_and_round_trips() {
        let src = r#"{"z":1,"a":[true,null,"x",-2,3.5],"m":{"b":"\u00e9\n","a":{}}}"#;
        let j = Json::from_slice(src.as_bytes()).unwrap();
        let out = serde_json::to_string(&j).unwrap();
        assert_eq!(
            out,
            r#"{"z":1,"a":[true,null,"x",-2,3.5],"m":{"b":"é\n","a":{}}}"#
        );
        assert_eq!(format!("{j:?}"), "object(3)");
    }
}
