//! JSON bridge: Avro values to and from JSON text, following the Avro
//! spec's JSON encoding.
//!
//! Conventions:
//! - `null`, booleans, numbers, strings and arrays are themselves; maps and
//!   records are objects; an enum is its symbol as a string.
//! - `bytes` and `fixed` are strings whose code points 0-255 are the bytes
//!   (ISO-8859-1), as Avro's JSON encoding does.
//! - A union value other than `null` is wrapped in an object naming its
//!   branch: `{"string": "x"}`, `{"com.acme.Data": {...}}`, `{"array": [...]}`.
//!   On input a bare value is accepted too; it takes the first branch it fits.
//! - Logical types are written as their underlying type (a date is an int,
//!   a decimal its two's-complement bytes); a `uuid` is its string.
//! - On input a record field that is absent takes its schema default;
//!   unknown fields are errors. Floats accept `"NaN"`, `"Infinity"`, `"-Infinity"`.

use std::collections::HashMap;

use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::{Map, Number, Value as Json};

use super::error::{Error, Result};
use super::names::{Names, Node};
use super::resolve::{to_logical, to_physical};

/// The Avro JSON encoding of `value`, which must conform to `schema`.
pub fn value_to_json(value: &Value, schema: &Schema) -> Result<Json> {
    let names = Names::of(schema);
    let mut b = Bridge {
        names: &names,
        path: Vec::new(),
        default_mode: false,
    };
    b.value_json(value.clone(), schema).map_err(Error::Json)
}

/// Parses a JSON value under `schema` into an Avro value ready to encode.
pub fn json_to_value(json: &Json, schema: &Schema) -> Result<Value> {
    let names = Names::of(schema);
    let mut b = Bridge {
        names: &names,
        path: Vec::new(),
        default_mode: false,
    };
    b.parse(json, schema).map_err(Error::Json)
}

/// Parses JSON text under `schema`.
pub fn json_text_to_value(text: &str, schema: &Schema) -> Result<Value> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| Error::Json(format!("not JSON: {e}")))?;
    json_to_value(&json, schema)
}

/// A field default (the spec's form: a union default is for its first branch, unwrapped).
pub(crate) fn default_value<'a>(
    json: &Json,
    schema: &'a Schema,
    names: &Names<'a>,
) -> std::result::Result<Value, String> {
    let mut b = Bridge {
        names,
        path: Vec::new(),
        default_mode: true,
    };
    b.parse(json, schema)
        .map_err(|e| format!("bad default: {e}"))
}

struct Bridge<'n, 'a> {
    names: &'n Names<'a>,
    path: Vec<String>,
    /// Field-default rules: unions take their first branch, unwrapped.
    default_mode: bool,
}

/// The name that labels a union branch in JSON.
fn branch_label(node: &Node<'_>) -> String {
    match node.name() {
        Some(n) => n.fullname(None),
        None => node.kind().to_owned(),
    }
}

fn latin1(s: &str) -> std::result::Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                format!("character {c:?} is not a byte (bytes are ISO-8859-1 strings)")
            })
        })
        .collect()
}

fn from_latin1(b: &[u8]) -> String {
    b.iter().map(|&x| char::from(x)).collect()
}

impl<'a> Bridge<'_, 'a> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("at /{}: {msg}", self.path.join("/"))
    }

    fn at<T>(&mut self, step: String, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(step);
        let r = f(self);
        self.path.pop();
        r
    }

    fn value_json(
        &mut self,
        value: Value,
        schema: &'a Schema,
    ) -> std::result::Result<Json, String> {
        let value = to_physical(value, schema).map_err(|e| self.err(e))?;
        let node = self.names.node(schema).map_err(|e| self.err(e))?;
        Ok(match (node, value) {
            (Node::Null, Value::Null) => Json::Null,
            (Node::Boolean, Value::Boolean(b)) => Json::Bool(b),
            (Node::Int, Value::Int(x)) => x.into(),
            (Node::Long, Value::Long(x)) => x.into(),
            (Node::Float, Value::Float(x)) => float_json(x.into()),
            (Node::Double, Value::Double(x)) => float_json(x),
            (Node::Bytes, Value::Bytes(b)) | (Node::Fixed(_), Value::Fixed(_, b)) => {
                Json::String(from_latin1(&b))
            }
            (Node::String, Value::String(s)) | (Node::Enum(_), Value::Enum(_, s)) => {
                Json::String(s)
            }
            (Node::Array(items), Value::Array(vs)) => Json::Array(
                vs.into_iter()
                    .enumerate()
                    .map(|(i, v)| self.at(i.to_string(), |b| b.value_json(v, items)))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            (Node::Map(values), Value::Map(m)) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let j = self.at(k.clone(), |b| b.value_json(v, values))?;
                    out.insert(k, j);
                }
                Json::Object(out)
            }
            (Node::Record(r), Value::Record(fields)) => {
                let mut out = Map::new();
                for (f, (name, v)) in r.fields.iter().zip(fields) {
                    let j = self.at(name.clone(), |b| b.value_json(v, &f.schema))?;
                    out.insert(name, j);
                }
                Json::Object(out)
            }
            (Node::Union(branches), Value::Union(i, v)) => {
                let b = branches
                    .get(i as usize)
                    .ok_or_else(|| self.err(format!("union has no branch {i}")))?;
                let bn = self.names.node(b).map_err(|e| self.err(e))?;
                let j = self.value_json(*v, b)?;
                match bn {
                    Node::Null => Json::Null,
                    _ => Json::Object(Map::from_iter([(branch_label(&bn), j)])),
                }
            }
            (n, v) => {
                return Err(self.err(format!(
                    "value {v:?} does not match schema type {}",
                    n.describe()
                )))
            }
        })
    }

    fn parse(&mut self, json: &Json, schema: &'a Schema) -> std::result::Result<Value, String> {
        let node = self.names.node(schema).map_err(|e| self.err(e))?;
        let v = self.parse_node(json, node)?;
        to_logical(v, schema).map_err(|e| self.err(e))
    }

    fn parse_node(&mut self, json: &Json, node: Node<'a>) -> std::result::Result<Value, String> {
        let mismatch = |b: &Self| {
            b.err(format!(
                "expected {}, got {}",
                node.describe(),
                json_kind(json)
            ))
        };
        Ok(match node {
            Node::Null => match json {
                Json::Null => Value::Null,
                _ => return Err(mismatch(self)),
            },
            Node::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| mismatch(self))?),
            Node::Int => {
                let x = json.as_i64().ok_or_else(|| mismatch(self))?;
                Value::Int(
                    i32::try_from(x).map_err(|_| self.err(format!("{x} does not fit an int")))?,
                )
            }
            Node::Long => Value::Long(json.as_i64().ok_or_else(|| mismatch(self))?),
            Node::Float => Value::Float(float_of(json).ok_or_else(|| mismatch(self))? as f32),
            Node::Double => Value::Double(float_of(json).ok_or_else(|| mismatch(self))?),
            Node::Bytes => Value::Bytes(
                latin1(json.as_str().ok_or_else(|| mismatch(self))?).map_err(|e| self.err(e))?,
            ),
            Node::String => Value::String(json.as_str().ok_or_else(|| mismatch(self))?.to_owned()),
            Node::Fixed(f) => {
                let b = latin1(json.as_str().ok_or_else(|| mismatch(self))?)
                    .map_err(|e| self.err(e))?;
                if b.len() != f.size {
                    return Err(self.err(format!(
                        "fixed {} needs {} bytes, got {}",
                        f.name,
                        f.size,
                        b.len()
                    )));
                }
                Value::Fixed(f.size, b)
            }
            Node::Enum(e) => {
                let s = json.as_str().ok_or_else(|| mismatch(self))?;
                let i = e.symbols.iter().position(|x| x == s).ok_or_else(|| {
                    self.err(format!(
                        "`{s}` is not a symbol of enum {} ({})",
                        e.name,
                        e.symbols.join(", ")
                    ))
                })?;
                Value::Enum(i as u32, s.to_owned())
            }
            Node::Array(items) => {
                let a = json.as_array().ok_or_else(|| mismatch(self))?;
                let mut out = Vec::with_capacity(a.len());
                for (i, j) in a.iter().enumerate() {
                    out.push(self.at(i.to_string(), |b| b.parse(j, items))?);
                }
                Value::Array(out)
            }
            Node::Map(values) => {
                let o = json.as_object().ok_or_else(|| mismatch(self))?;
                let mut out = HashMap::with_capacity(o.len());
                for (k, j) in o {
                    out.insert(k.clone(), self.at(k.clone(), |b| b.parse(j, values))?);
                }
                Value::Map(out)
            }
            Node::Record(r) => {
                let o = json.as_object().ok_or_else(|| mismatch(self))?;
                if let Some(k) = o.keys().find(|k| !r.fields.iter().any(|f| &f.name == *k)) {
                    return Err(self.err(format!("record {} has no field `{k}`", r.name)));
                }
                let mut out = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let v = match (o.get(&f.name), &f.default) {
                        (Some(j), _) => self.at(f.name.clone(), |b| b.parse(j, &f.schema))?,
                        (None, Some(d)) => {
                            let saved = std::mem::replace(&mut self.default_mode, true);
                            let v = self.at(f.name.clone(), |b| b.parse(d, &f.schema));
                            self.default_mode = saved;
                            v?
                        }
                        (None, None) => {
                            return Err(
                                self.err(format!("missing field `{}` (it has no default)", f.name))
                            )
                        }
                    };
                    out.push((f.name.clone(), v));
                }
                Value::Record(out)
            }
            Node::Union(branches) => self.union_from_json(json, branches)?,
        })
    }

    fn union_from_json(
        &mut self,
        json: &Json,
        branches: &'a [Schema],
    ) -> std::result::Result<Value, String> {
        if self.default_mode {
            let first = branches.first().ok_or_else(|| self.err("empty union"))?;
            return Ok(Value::Union(0, Box::new(self.parse(json, first)?)));
        }
        let nodes: Vec<Node<'a>> = branches
            .iter()
            .map(|b| self.names.node(b))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))?;
        // Wrapped: {"<branch>": value}.
        if let Some((label, inner)) = json
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        {
            let found = nodes.iter().position(|n| {
                let l = branch_label(n);
                &l == label || n.name().is_some_and(|x| x.name() == label)
            });
            if let Some(i) = found {
                let v = self.at(label.clone(), |b| b.parse(inner, &branches[i]))?;
                return Ok(Value::Union(i as u32, Box::new(v)));
            }
        }
        // Bare: the first branch it fits.
        for (i, b) in branches.iter().enumerate() {
            if let Ok(v) = self.parse(json, b) {
                return Ok(Value::Union(i as u32, Box::new(v)));
            }
        }
        let labels: Vec<String> = nodes.iter().map(branch_label).collect();
        Err(self.err(format!(
            "{} fits no branch of union [{}]",
            json_kind(json),
            labels.join(", ")
        )))
    }
}

fn float_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn float_of(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{"type":"record","name":"E","namespace":"n","fields":[
        {"name":"id","type":"long"},
        {"name":"tag","type":["null","string"],"default":null},
        {"name":"data","type":["null",{"type":"record","name":"D","fields":[{"name":"v","type":"double"}]}]},
        {"name":"raw","type":"bytes","default":"\u00ff"},
        {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]},"default":"B"},
        {"name":"day","type":{"type":"int","logicalType":"date"},"default":3}
    ]}"#;

    #[test]
    fn round_trip_with_wrapped_unions() {
        let s = Schema::parse_str(SCHEMA).unwrap();
        let j = json!({"id": 5, "tag": {"string": "x"}, "data": {"n.D": {"v": 1.5}}, "raw": "a\u{ff}", "kind": "A", "day": 7});
        let v = json_to_value(&j, &s).unwrap();
        assert!(v.validate(&s));
        assert_eq!(value_to_json(&v, &s).unwrap(), j);
    }

    #[test]
    fn bare_unions_and_defaults() {
        let s = Schema::parse_str(SCHEMA).unwrap();
        let v = json_to_value(&json!({"id": 1, "tag": "x", "data": null}), &s).unwrap();
        let back = value_to_json(&v, &s).unwrap();
        assert_eq!(
            back,
            json!({"id": 1, "tag": {"string": "x"}, "data": null, "raw": "\u{ff}", "kind": "B", "day": 3})
        );
    }

    #[test]
    fn errors_have_paths() {
        let s = Schema::parse_str(SCHEMA).unwrap();
        let e = json_to_value(&json!({"id": "one", "data": null}), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/id") && e.contains("expected long"), "{e}");
        let e = json_to_value(&json!({"id": 1, "data": {"n.D": {"v": "x"}}}), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/data/n.D/v"), "{e}");
        let e = json_to_value(&json!({"id": 1}), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `data`"), "{e}");
        let e = json_to_value(&json!({"id": 1, "data": null, "nope": 1}), &s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no field `nope`"), "{e}");
        assert!(json_text_to_value("{", &s).is_err());
    }
}
