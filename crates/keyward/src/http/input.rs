//! Reading requests into their typed structs (`wire.rs` and each dialect's), which are also
//! the OpenAPI schemas, so the documentation cannot drift from the parser.
//!
//! JSON syntax is checked first (400), then the size (413), then every field: a field of type
//! [`Input<T>`] never fails to deserialize; it holds the parsed value or what is wrong with it,
//! and a [`Check`] collects every invalid field under its name (422). Unknown fields are named
//! too (the struct's own field list, as serde sees it, says which are known). No value that
//! could be a key is ever echoed back.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use keyward_core::{Metadata, Permission, PermissionSet};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::problem::{FlawKind, InvalidField, Problem, echo};

/// Largest accepted request body.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// A request body as the handlers receive it.
pub(crate) type Body = Result<Bytes, BytesRejection>;

/// What is wrong with (part of) a field, before the field's name is known.
#[derive(Debug, Clone)]
pub(crate) struct Flaw {
    /// Appended to the field's name: empty, `[2]` or `.key`.
    at: String,
    /// The value as it may be echoed.
    value: Option<String>,
    message: String,
    kind: FlawKind,
}

impl Flaw {
    fn wrong_type(value: &Value, expected: &str) -> Self {
        Self {
            at: String::new(),
            value: shown(value),
            message: format!("must be {expected}"),
            kind: FlawKind::WrongType,
        }
    }

    fn invalid(value: Option<&str>, message: impl ToString) -> Self {
        Self {
            at: String::new(),
            value: value.map(echo),
            message: message.to_string(),
            kind: FlawKind::Invalid,
        }
    }
}

/// `value` as it may be echoed (`None` for null).
fn shown(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(echo(s)),
        other => Some(echo(&other.to_string())),
    }
}

/// One field of a request: absent, `null`, a valid value, or what is wrong with it.
#[derive(Debug)]
pub(crate) enum Input<T> {
    Absent,
    Null,
    Valid(T),
    Invalid(Vec<Flaw>),
}

// Not derived: a derive would require `T: Default`, which no parsed type needs to be.
#[allow(clippy::derivable_impls)]
impl<T> Default for Input<T> {
    fn default() -> Self {
        Self::Absent
    }
}

/// A type a request field is parsed into.
pub(crate) trait FromJson: Sized {
    /// Parses a present, non-null value.
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>>;
}

impl<'de, T: FromJson> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => Self::Null,
            v => match T::from_json(v) {
                Ok(t) => Self::Valid(t),
                Err(flaws) => Self::Invalid(flaws),
            },
        })
    }
}

/// A string parsed with `FromStr`; the parse error is the message.
fn parse_str<T: FromStr>(value: Value) -> Result<T, Vec<Flaw>>
where
    T::Err: std::fmt::Display,
{
    match value {
        Value::String(s) => s.parse().map_err(|e| vec![Flaw::invalid(Some(&s), e)]),
        other => Err(vec![Flaw::wrong_type(&other, "a string")]),
    }
}

macro_rules! from_str_json {
    ($($t:ty),* $(,)?) => {$(
        impl FromJson for $t {
            fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
                parse_str(value)
            }
        }
    )*};
}

from_str_json!(
    keyward_core::Name,
    keyward_core::KeyType,
    keyward_core::Environment,
    keyward_core::AccountId,
    keyward_core::CredentialId,
    keyward_core::Timestamp,
    Permission,
    crate::audit::EventHead,
);

/// A presented key: never echoed, whatever it is.
#[derive(Debug)]
pub(crate) struct PresentedKey(pub(crate) Zeroizing<String>);

impl FromJson for PresentedKey {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        match value {
            Value::String(s) => Ok(Self(Zeroizing::new(s))),
            _ => Err(vec![Flaw {
                at: String::new(),
                value: Some("[redacted]".into()),
                message: "must be a string".into(),
                kind: FlawKind::WrongType,
            }]),
        }
    }
}

impl FromJson for PermissionSet {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        let Value::Array(items) = value else {
            return Err(vec![Flaw::wrong_type(&value, "an array of strings")]);
        };
        // Wrong types first; the strings are parsed only once all are strings.
        let wrong: Vec<Flaw> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_string())
            .map(|(i, item)| Flaw {
                at: format!("[{i}]"),
                ..Flaw::wrong_type(item, "a string")
            })
            .collect();
        if !wrong.is_empty() {
            return Err(wrong);
        }
        let mut out = Vec::with_capacity(items.len());
        let mut bad = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let s = item.as_str().unwrap_or_default();
            match Permission::parse(s) {
                Ok(p) => out.push(p),
                Err(e) => bad.push(Flaw {
                    at: format!("[{i}]"),
                    ..Flaw::invalid(Some(s), e)
                }),
            }
        }
        if bad.is_empty() {
            Ok(PermissionSet::from(out))
        } else {
            Err(bad)
        }
    }
}

impl FromJson for Metadata {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        let Value::Object(entries) = value else {
            return Err(vec![Flaw::wrong_type(&value, "an object of string values")]);
        };
        let mut map = BTreeMap::new();
        let mut bad = Vec::new();
        for (k, v) in entries {
            match v {
                Value::String(s) => {
                    map.insert(k, s);
                }
                other => bad.push(Flaw {
                    at: format!(".{}", echo(&k)),
                    ..Flaw::wrong_type(&other, "a string")
                }),
            }
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        Metadata::try_from(map).map_err(|e| vec![Flaw::invalid(None, e)])
    }
}

impl FromJson for u64 {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        value
            .as_u64()
            .ok_or_else(|| vec![Flaw::wrong_type(&value, "a non-negative integer")])
    }
}

impl FromJson for bool {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        value
            .as_bool()
            .ok_or_else(|| vec![Flaw::wrong_type(&value, "true or false")])
    }
}

/// A page size, 1 to 100 (given in a query string, so as a string).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSize(pub(crate) usize);

impl FromJson for PageSize {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        let n = match &value {
            Value::String(s) => s.parse::<usize>().ok(),
            Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            _ => None,
        };
        match n {
            Some(n) if (1..=100).contains(&n) => Ok(Self(n)),
            _ => Err(vec![Flaw {
                kind: FlawKind::Invalid,
                ..Flaw::wrong_type(&value, "an integer from 1 to 100")
            }]),
        }
    }
}

/// A sequence number of the audit log (given in a query string, so as a string).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seq(pub(crate) u64);

impl FromJson for Seq {
    fn from_json(value: Value) -> Result<Self, Vec<Flaw>> {
        let n = match &value {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        n.map(Self).ok_or_else(|| {
            vec![Flaw {
                kind: FlawKind::Invalid,
                ..Flaw::wrong_type(&value, "a sequence number")
            }]
        })
    }
}

/// Collects the invalid fields of one request.
#[derive(Debug, Default)]
pub(crate) struct Check {
    errors: Vec<InvalidField>,
}

impl Check {
    fn record(&mut self, name: &str, flaws: Vec<Flaw>) {
        for f in flaws {
            self.errors.push(InvalidField {
                name: format!("{name}{}", f.at),
                value: f.value,
                message: f.message,
                kind: f.kind,
            });
        }
    }

    /// Records an invalid field.
    pub(crate) fn invalid(&mut self, name: &str, value: Option<&str>, message: impl ToString) {
        self.record(name, vec![Flaw::invalid(value, message)]);
    }

    /// A field that must be present and not null.
    pub(crate) fn required<T>(&mut self, name: &str, input: Input<T>) -> Option<T> {
        match input {
            Input::Valid(v) => Some(v),
            Input::Invalid(flaws) => {
                self.record(name, flaws);
                None
            }
            Input::Absent | Input::Null => {
                self.record(
                    name,
                    vec![Flaw {
                        at: String::new(),
                        value: None,
                        message: "is required".into(),
                        kind: FlawKind::Required,
                    }],
                );
                None
            }
        }
    }

    /// A field that may be absent or null (both `None`).
    pub(crate) fn optional<T>(&mut self, name: &str, input: Input<T>) -> Option<T> {
        match input {
            Input::Valid(v) => Some(v),
            Input::Invalid(flaws) => {
                self.record(name, flaws);
                None
            }
            Input::Absent | Input::Null => None,
        }
    }

    /// A field where `null` means something: absent is `None`, `null` is `Some(None)`.
    pub(crate) fn nullable<T>(&mut self, name: &str, input: Input<T>) -> Option<Option<T>> {
        match input {
            Input::Absent => None,
            Input::Null => Some(None),
            Input::Valid(v) => Some(Some(v)),
            Input::Invalid(mut flaws) => {
                for f in &mut flaws {
                    if f.kind == FlawKind::WrongType && f.at.is_empty() {
                        f.message.push_str(" or null");
                    }
                }
                self.record(name, flaws);
                None
            }
        }
    }

    /// `Ok` if nothing was invalid, else the 422 problem listing every invalid field.
    pub(crate) fn finish(self) -> Result<(), Problem> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(self.errors))
        }
    }
}

/// Reads a JSON object body into `T`, with a [`Check`] holding the unknown fields. An empty
/// body reads as `{}` when `optional`.
pub(crate) fn read_body<T: DeserializeOwned>(
    body: Body,
    optional: bool,
) -> Result<(T, Check), Problem> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                status,
                "payload_too_large",
                format!("the request body is larger than {BODY_LIMIT} bytes"),
            )
        } else {
            Problem::bad_json("the request body could not be read")
        }
    })?;
    let value = if optional && body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice::<Value>(&body).map_err(|e| {
            // serde_json's syntax messages name a line and column, never the content.
            Problem::bad_json(format!("the request body is not valid JSON: {e}"))
        })?
    };
    let Value::Object(map) = value else {
        return Err(Problem::validation(vec![InvalidField {
            name: "body".into(),
            value: None,
            message: "must be a JSON object".into(),
            kind: FlawKind::WrongType,
        }]));
    };
    read_object(map)
}

/// Reads query parameters (each a string) into `T`, as [`read_body`] reads a body.
pub(crate) fn read_query<T: DeserializeOwned>(
    pairs: Vec<(String, String)>,
) -> Result<(T, Check), Problem> {
    let map = pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    read_object(map)
}

fn read_object<T: DeserializeOwned>(mut map: Map<String, Value>) -> Result<(T, Check), Problem> {
    let known = field_names::<T>();
    let mut check = Check::default();
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    for name in unknown {
        map.remove(&name);
        check.errors.push(InvalidField {
            name: echo(&name),
            value: None,
            message: format!(
                "is not a known field (expected one of: {})",
                known.join(", ")
            ),
            kind: FlawKind::Unknown,
        });
    }
    // Every field is an `Input`, which accepts any JSON value: this cannot fail on content.
    let typed = serde_json::from_value(Value::Object(map)).map_err(|e| {
        Problem::validation(vec![InvalidField {
            name: "body".into(),
            value: None,
            message: e.to_string(),
            kind: FlawKind::Invalid,
        }])
    })?;
    Ok((typed, check))
}

/// The field names `T`'s derived `Deserialize` knows (what it passes to `deserialize_struct`).
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

/// A deserializer that only records the field names a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        name: Input<keyward_core::Name>,
        #[serde(rename = "type")]
        key_type: Input<keyward_core::KeyType>,
    }

    impl Default for Probe {
        fn default() -> Self {
            Self {
                name: Input::Absent,
                key_type: Input::Absent,
            }
        }
    }

    #[test]
    fn field_names_are_the_wire_names() {
        assert_eq!(field_names::<Probe>(), &["name", "type"]);
    }

    #[test]
    fn every_invalid_and_unknown_field_is_named() {
        let (p, mut check) = read_body::<Probe>(
            Ok(Bytes::from_static(
                br#"{"name": 3, "type": "admin", "x": 1, "y": 2}"#,
            )),
            false,
        )
        .unwrap_or_else(|_| panic!("readable"));
        check.required("name", p.name);
        check.required("type", p.key_type);
        let names: Vec<String> = check.errors.iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, ["x", "y", "name", "type"]);
    }
}
