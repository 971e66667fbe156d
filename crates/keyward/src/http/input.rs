//! Reading request bodies: JSON syntax (400), size (413), then field by field with every
//! validation error collected (422). No value that could be a key is ever echoed back.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::problem::{InvalidField, Problem, echo};

/// Largest accepted request body.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// The fields of a JSON object body, read one by one.
pub(crate) struct Fields {
    map: Map<String, Value>,
    errors: Vec<InvalidField>,
    /// Fields whose values are never echoed.
    secret: &'static [&'static str],
}

impl Fields {
    /// Parses `body` as a JSON object with only the `allowed` fields. An empty body reads as
    /// `{}` when `optional`.
    pub(crate) fn parse(
        body: Result<Bytes, BytesRejection>,
        allowed: &[&str],
        optional: bool,
    ) -> Result<Self, Problem> {
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
            }]));
        };
        let mut fields = Self {
            map,
            errors: Vec::new(),
            secret: &[],
        };
        let unknown: Vec<String> = fields
            .map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            fields.map.remove(&name);
            let shown = echo(&name);
            fields.errors.push(InvalidField {
                name: shown,
                value: None,
                message: format!(
                    "is not a known field (expected one of: {})",
                    allowed.join(", ")
                ),
            });
        }
        Ok(fields)
    }

    /// Marks fields whose values must never be echoed.
    pub(crate) fn with_secret(mut self, names: &'static [&'static str]) -> Self {
        self.secret = names;
        self
    }

    fn shown(&self, name: &str, value: &Value) -> Option<String> {
        if self.secret.contains(&name) {
            return Some("[redacted]".into());
        }
        Some(match value {
            Value::String(s) => echo(s),
            Value::Null => return None,
            other => echo(&other.to_string()),
        })
    }

    /// Records a validation error for `name`.
    pub(crate) fn invalid(&mut self, name: &str, value: Option<&str>, message: impl Into<String>) {
        let value = if self.secret.contains(&name) {
            value.map(|_| "[redacted]".to_owned())
        } else {
            value.map(echo)
        };
        self.errors.push(InvalidField {
            name: name.to_owned(),
            value,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, name: &str, expected: &str) {
        let value = self.map.get(name).and_then(|v| self.shown(name, v));
        self.errors.push(InvalidField {
            name: name.to_owned(),
            value,
            message: format!("must be {expected}"),
        });
    }

    /// Records "is required" for a missing field and passes the value through.
    pub(crate) fn required<T>(&mut self, name: &str, value: Option<T>) -> Option<T> {
        let about = |e: &InvalidField| {
            e.name == name
                || e.name
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['[', '.']))
        };
        if value.is_none() && !self.errors.iter().any(about) {
            self.invalid(name, None, "is required");
        }
        value
    }

    /// A string field that must be present.
    pub(crate) fn required_string(&mut self, name: &str) -> Option<String> {
        let v = self.string(name);
        self.required(name, v)
    }

    /// A string field; absent or `null` is `None`.
    pub(crate) fn string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.wrong_type(name, "a string");
                None
            }
        }
    }

    /// A field that may be explicitly `null`: absent is `None`, `null` is `Some(None)`.
    pub(crate) fn nullable_string(&mut self, name: &str) -> Option<Option<String>> {
        match self.map.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                self.wrong_type(name, "a string or null");
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut bad = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => bad.push((i, self.shown(name, other))),
                    }
                }
                if bad.is_empty() {
                    return Some(out);
                }
                for (i, value) in bad {
                    self.errors.push(InvalidField {
                        name: format!("{name}[{i}]"),
                        value,
                        message: "must be a string".into(),
                    });
                }
                None
            }
            Some(_) => {
                self.wrong_type(name, "an array of strings");
                None
            }
        }
    }

    /// An object of string values.
    pub(crate) fn string_map(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                let mut bad = Vec::new();
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        other => bad.push((format!("{name}.{}", echo(k)), self.shown(name, other))),
                    }
                }
                if bad.is_empty() {
                    return Some(out);
                }
                for (field, value) in bad {
                    self.errors.push(InvalidField {
                        name: field,
                        value,
                        message: "must be a string".into(),
                    });
                }
                None
            }
            Some(_) => {
                self.wrong_type(name, "an object of string values");
                None
            }
        }
    }

    /// A non-negative integer.
    pub(crate) fn u64(&mut self, name: &str) -> Option<u64> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(_) => {
                self.wrong_type(name, "a non-negative integer");
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.wrong_type(name, "true or false");
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
