//! Read-time schema resolution (the Avro spec's "Schema Resolution"): a
//! value decoded with the writer's schema becomes a value of the reader's.
//! apache-avro's own `Value::resolve` ignores field aliases and named-type
//! rules, so this follows the spec and the same rules as `compat`.

use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
use apache_avro::types::Value;
use apache_avro::{Decimal, Schema, Uuid};

use super::compat::Checker;
use super::json::default_value;
use super::names::{names_match, writer_field, Names, Node};

/// Resolves `value` (decoded with `writer`) into `reader`. Errors carry the
/// path into the reader schema.
pub(crate) fn resolve(value: Value, writer: &Schema, reader: &Schema) -> Result<Value, String> {
    let wn = Names::of(writer);
    let rn = Names::of(reader);
    Resolver {
        rn: &rn,
        wn: &wn,
        path: Vec::new(),
    }
    .resolve(value, writer, reader)
}

struct Resolver<'n, 'r, 'w> {
    rn: &'n Names<'r>,
    wn: &'n Names<'w>,
    /// Steps into the reader schema, for error messages.
    path: Vec<&'r str>,
}

impl<'r, 'w> Resolver<'_, 'r, 'w> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        format!("/{}: {msg}", self.path.join("/"))
    }

    fn resolve(
        &mut self,
        value: Value,
        writer: &'w Schema,
        reader: &'r Schema,
    ) -> Result<Value, String> {
        if let (Value::BigDecimal(_), Schema::BigDecimal) = (&value, reader) {
            return Ok(value);
        }
        // Values under a logical writer type come decoded; bring them back to Avro's base types.
        let value = to_physical(value, writer).map_err(|e| self.err(e))?;
        let w = self.wn.node(writer).map_err(|e| self.err(e))?;
        let r = self.rn.node(reader).map_err(|e| self.err(e))?;
        let v = self.resolve_nodes(value, w, r)?;
        to_logical(v, reader).map_err(|e| self.err(e))
    }

    fn resolve_nodes(&mut self, value: Value, w: Node<'w>, r: Node<'r>) -> Result<Value, String> {
        use Node as N;
        // A writer union: the value says which branch was written.
        if let N::Union(wb) = w {
            let Value::Union(i, inner) = value else {
                return Err(self.err("writer union value without a branch"));
            };
            let branch = wb
                .get(i as usize)
                .ok_or_else(|| self.err(format!("writer union has no branch {i}")))?;
            let inner = to_physical(*inner, branch).map_err(|e| self.err(e))?;
            let bn = self.wn.node(branch).map_err(|e| self.err(e))?;
            return self.resolve_nodes(inner, bn, r);
        }
        match (r, w, value) {
            (N::Union(rb), _, value) => self.pick_reader_branch(value, w, rb),
            (N::Null, N::Null, v @ Value::Null)
            | (N::Boolean, N::Boolean, v @ Value::Boolean(_))
            | (N::Int, N::Int, v @ Value::Int(_))
            | (N::Long, N::Long, v @ Value::Long(_))
            | (N::Float, N::Float, v @ Value::Float(_))
            | (N::Double, N::Double, v @ Value::Double(_))
            | (N::Bytes, N::Bytes, v @ Value::Bytes(_))
            | (N::String, N::String, v @ Value::String(_)) => Ok(v),
            (N::Long, N::Int, Value::Int(x)) => Ok(Value::Long(x.into())),
            (N::Float, N::Int, Value::Int(x)) => Ok(Value::Float(x as f32)),
            (N::Float, N::Long, Value::Long(x)) => Ok(Value::Float(x as f32)),
            (N::Double, N::Int, Value::Int(x)) => Ok(Value::Double(x.into())),
            (N::Double, N::Long, Value::Long(x)) => Ok(Value::Double(x as f64)),
            (N::Double, N::Float, Value::Float(x)) => Ok(Value::Double(x.into())),
            (N::Bytes, N::String, Value::String(s)) => Ok(Value::Bytes(s.into_bytes())),
            // Java reads such bytes as a string without validating them; invalid UTF-8 becomes U+FFFD.
            (N::String, N::Bytes, Value::Bytes(b)) => {
                Ok(Value::String(match String::from_utf8(b) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                }))
            }
            (N::Array(ri), N::Array(wi), Value::Array(items)) => {
                self.path.push("items");
                let out = items
                    .into_iter()
                    .map(|v| self.resolve(v, wi, ri))
                    .collect::<Result<Vec<_>, _>>();
                self.path.pop();
                Ok(Value::Array(out?))
            }
            (N::Map(rv), N::Map(wv), Value::Map(entries)) => {
                self.path.push("values");
                let out = entries
                    .into_iter()
                    .map(|(k, v)| self.resolve(v, wv, rv).map(|v| (k, v)))
                    .collect::<Result<_, _>>();
                self.path.pop();
                Ok(Value::Map(out?))
            }
            (N::Fixed(rf), N::Fixed(wf), Value::Fixed(n, bytes)) => {
                if !names_match(&r, &w) {
                    return Err(
                        self.err(format!("fixed {} cannot read fixed {}", rf.name, wf.name))
                    );
                }
                if rf.size != wf.size || n != rf.size {
                    return Err(self.err(format!(
                        "fixed size {} cannot read size {}",
                        rf.size, wf.size
                    )));
                }
                Ok(Value::Fixed(n, bytes))
            }
            (N::Enum(re), N::Enum(we), Value::Enum(_, symbol)) => {
                if !names_match(&r, &w) {
                    return Err(self.err(format!("enum {} cannot read enum {}", re.name, we.name)));
                }
                let chosen = if re.symbols.contains(&symbol) {
                    symbol
                } else if let Some(d) = re.default.as_ref().filter(|d| re.symbols.contains(d)) {
                    d.clone()
                } else {
                    return Err(self.err(format!(
                        "reader enum has no symbol `{symbol}` and no default"
                    )));
                };
                let index = re.symbols.iter().position(|s| *s == chosen).unwrap_or(0) as u32;
                Ok(Value::Enum(index, chosen))
            }
            (N::Record(rr), N::Record(wr), Value::Record(fields)) => {
                if !names_match(&r, &w) {
                    return Err(
                        self.err(format!("record {} cannot read record {}", rr.name, wr.name))
                    );
                }
                let mut written: Vec<Option<Value>> =
                    fields.into_iter().map(|(_, v)| Some(v)).collect();
                let mut out = Vec::with_capacity(rr.fields.len());
                self.path.push("fields");
                for rf in &rr.fields {
                    self.path.push(&rf.name);
                    let v = match writer_field(wr, rf).map_err(|e| self.err(e))? {
                        Some(wf) => {
                            let i = wr
                                .fields
                                .iter()
                                .position(|f| std::ptr::eq(f, wf))
                                .unwrap_or(usize::MAX);
                            let v = written.get_mut(i).and_then(Option::take);
                            let v =
                                v.ok_or_else(|| self.err("writer record value lacks this field"))?;
                            self.resolve(v, &wf.schema, &rf.schema)?
                        }
                        None => match &rf.default {
                            Some(d) => {
                                default_value(d, &rf.schema, self.rn).map_err(|e| self.err(e))?
                            }
                            None => {
                                return Err(
                                    self.err("reader field is not written and has no default")
                                )
                            }
                        },
                    };
                    out.push((rf.name.clone(), v));
                    self.path.pop();
                }
                self.path.pop();
                Ok(Value::Record(out))
            }
            (_, _, v) => Err(self.err(format!(
                "reader type {} cannot read writer type {} (value {})",
                r.describe(),
                w.describe(),
                kind_of(&v)
            ))),
        }
    }

    /// Picks the reader branch as Avro does: an exact match (same type, or
    /// same full name) first, then the first branch that can read the writer.
    fn pick_reader_branch(
        &mut self,
        value: Value,
        w: Node<'w>,
        branches: &'r [Schema],
    ) -> Result<Value, String> {
        let mut pick = None;
        for (i, b) in branches.iter().enumerate() {
            let Ok(bn) = self.rn.node(b) else { continue };
            let exact = match (bn.name(), w.name()) {
                (Some(a), Some(c)) => bn.kind() == w.kind() && a == c,
                (None, None) => bn.kind() == w.kind(),
                _ => false,
            };
            if exact {
                pick = Some((i, b, bn));
                break;
            }
        }
        if pick.is_none() {
            let mut checker = Checker::new(self.rn, self.wn);
            for (i, b) in branches.iter().enumerate() {
                let Ok(bn) = self.rn.node(b) else { continue };
                if checker.check_nodes(bn, w).is_empty() {
                    pick = Some((i, b, bn));
                    break;
                }
            }
        }
        let Some((i, b, bn)) = pick else {
            return Err(self.err(format!(
                "reader union has no branch that can read the writer's {}",
                w.describe()
            )));
        };
        let v = self.resolve_nodes(value, w, bn)?;
        let v = to_logical(v, b).map_err(|e| self.err(e))?;
        Ok(Value::Union(i as u32, Box::new(v)))
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Float(_) => "float",
        Value::Double(_) => "double",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "string",
        Value::Fixed(..) => "fixed",
        Value::Enum(..) => "enum",
        Value::Union(..) => "union",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Record(_) => "record",
        _ => "logical",
    }
}

/// A decoded logical value as its underlying Avro value.
pub(crate) fn to_physical(value: Value, schema: &Schema) -> Result<Value, String> {
    Ok(match value {
        Value::Date(x) | Value::TimeMillis(x) => Value::Int(x),
        Value::TimeMicros(x)
        | Value::TimestampMillis(x)
        | Value::TimestampMicros(x)
        | Value::TimestampNanos(x)
        | Value::LocalTimestampMillis(x)
        | Value::LocalTimestampMicros(x)
        | Value::LocalTimestampNanos(x) => Value::Long(x),
        Value::Decimal(d) => {
            let bytes = Vec::<u8>::try_from(&d).map_err(|e| e.to_string())?;
            match schema {
                Schema::Decimal(ds) => match &ds.inner {
                    InnerDecimalSchema::Fixed(f) => Value::Fixed(f.size, bytes),
                    InnerDecimalSchema::Bytes => Value::Bytes(bytes),
                },
                _ => Value::Bytes(bytes),
            }
        }
        Value::Uuid(u) => match schema {
            Schema::Uuid(UuidSchema::Fixed(f)) => Value::Fixed(f.size, u.as_bytes().to_vec()),
            Schema::Uuid(UuidSchema::Bytes) => Value::Bytes(u.as_bytes().to_vec()),
            _ => Value::String(u.hyphenated().to_string()),
        },
        Value::Duration(d) => Value::Fixed(12, <[u8; 12]>::from(d).to_vec()),
        Value::BigDecimal(_) => {
            return Err("a big-decimal value can only be read as big-decimal".into())
        }
        other => other,
    })
}

/// A base Avro value as the reader schema's logical type, if it has one.
pub(crate) fn to_logical(value: Value, schema: &Schema) -> Result<Value, String> {
    Ok(match (schema, value) {
        (Schema::Date, Value::Int(x)) => Value::Date(x),
        (Schema::TimeMillis, Value::Int(x)) => Value::TimeMillis(x),
        (Schema::TimeMicros, Value::Long(x)) => Value::TimeMicros(x),
        (Schema::TimestampMillis, Value::Long(x)) => Value::TimestampMillis(x),
        (Schema::TimestampMicros, Value::Long(x)) => Value::TimestampMicros(x),
        (Schema::TimestampNanos, Value::Long(x)) => Value::TimestampNanos(x),
        (Schema::LocalTimestampMillis, Value::Long(x)) => Value::LocalTimestampMillis(x),
        (Schema::LocalTimestampMicros, Value::Long(x)) => Value::LocalTimestampMicros(x),
        (Schema::LocalTimestampNanos, Value::Long(x)) => Value::LocalTimestampNanos(x),
        (Schema::Decimal(_), Value::Bytes(b) | Value::Fixed(_, b)) => {
            Value::Decimal(Decimal::from(b))
        }
        (Schema::Uuid(_), Value::String(s)) => {
            Value::Uuid(Uuid::parse_str(&s).map_err(|e| format!("`{s}` is not a UUID: {e}"))?)
        }
        (Schema::Uuid(_), Value::Bytes(b) | Value::Fixed(_, b)) => {
            Value::Uuid(Uuid::from_slice(&b).map_err(|e| format!("not a 16-byte UUID: {e}"))?)
        }
        (Schema::Duration(_), Value::Fixed(12, b)) => {
            let arr: [u8; 12] = b
                .as_slice()
                .try_into()
                .map_err(|_| "duration needs 12 bytes".to_owned())?;
            Value::Duration(arr.into())
        }
        (Schema::BigDecimal, _) => {
            return Err("only big-decimal data can be read as big-decimal".into())
        }
        (_, v) => v,
    })
}
