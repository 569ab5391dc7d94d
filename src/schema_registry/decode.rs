//! A bounded Avro binary decoder for untrusted input.
//!
//! apache-avro's decoder reads a union index at end of input as `null`
//! (so some truncations pass), allocates a length prefix before checking it
//! against the input, and recurses without limit (a deep recursive value
//! overflows the stack). This one checks every length against the bytes
//! left, caps nesting, and yields the same `Value`s.

use std::collections::HashMap;

use apache_avro::types::Value;
use apache_avro::Schema;

use super::names::{Names, Node};
use super::resolve::to_logical;

/// Deepest nesting of arrays, maps, unions and records accepted.
pub(crate) const MAX_DEPTH: usize = 256;
/// Most zero-byte items (nulls, empty records) one array or map may hold.
const MAX_EMPTY_ITEMS: usize = 1 << 16;

/// Decodes one datum; `input` is advanced past it.
pub(crate) fn decode(schema: &Schema, input: &mut &[u8]) -> Result<Value, String> {
    let names = Names::of(schema);
    let mut d = Decoder {
        names: &names,
        input,
        depth: 0,
    };
    let v = d.value(schema)?;
    *input = d.input;
    Ok(v)
}

struct Decoder<'n, 'a, 'i> {
    names: &'n Names<'a>,
    input: &'i [u8],
    depth: usize,
}

impl<'a, 'i> Decoder<'_, 'a, 'i> {
    fn take(&mut self, n: usize) -> Result<&'i [u8], String> {
        if n > self.input.len() {
            return Err(format!(
                "truncated: {n} bytes needed, {} left",
                self.input.len()
            ));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self
            .input
            .split_first()
            .ok_or_else(|| "truncated: 1 byte needed, 0 left".to_owned())?;
        self.input = rest;
        Ok(b)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut acc: u64 = 0;
        for i in 0..10 {
            let b = self
                .byte()
                .map_err(|_| "truncated inside a varint".to_owned())?;
            acc |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 9 && b > 1 {
                    return Err("varint overflows 64 bits".into());
                }
                return Ok(((acc >> 1) as i64) ^ -((acc & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn int(&mut self) -> Result<i32, String> {
        let x = self.long()?;
        i32::try_from(x).map_err(|_| format!("{x} does not fit an int"))
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| format!("negative {what} length {n}"))?;
        if n > self.input.len() {
            return Err(format!(
                "{what} length {n} exceeds the {} bytes left",
                self.input.len()
            ));
        }
        Ok(n)
    }

    fn value(&mut self, schema: &'a Schema) -> Result<Value, String> {
        if let Schema::BigDecimal = schema {
            return self.big_decimal();
        }
        let node = self.names.node(schema)?;
        let v = self.node(node)?;
        to_logical(v, schema)
    }

    fn node(&mut self, node: Node<'a>) -> Result<Value, String> {
        Ok(match node {
            Node::Null => Value::Null,
            Node::Boolean => match self.byte()? {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => return Err(format!("boolean byte {b:#04x} is neither 0 nor 1")),
            },
            Node::Int => Value::Int(self.int()?),
            Node::Long => Value::Long(self.long()?),
            Node::Float => Value::Float(f32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "float")?,
            )),
            Node::Double => Value::Double(f64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| "double")?,
            )),
            Node::Bytes => {
                let n = self.len("bytes")?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            Node::String => {
                let n = self.len("string")?;
                let b = self.take(n)?.to_vec();
                Value::String(
                    String::from_utf8(b).map_err(|_| "string is not valid UTF-8".to_owned())?,
                )
            }
            Node::Fixed(f) => Value::Fixed(f.size, self.take(f.size)?.to_vec()),
            Node::Enum(e) => {
                let i = self.int()?;
                let symbol = usize::try_from(i)
                    .ok()
                    .and_then(|i| e.symbols.get(i))
                    .ok_or_else(|| {
                        format!(
                            "enum index {i} out of range for {} ({} symbols)",
                            e.name,
                            e.symbols.len()
                        )
                    })?;
                Value::Enum(i as u32, symbol.clone())
            }
            Node::Union(branches) => {
                let i = self.long()?;
                let b = usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| {
                        format!("union index {i} out of range ({} branches)", branches.len())
                    })?;
                let v = self.nested(|d| d.value(b))?;
                Value::Union(i as u32, Box::new(v))
            }
            Node::Record(r) => self.nested(|d| {
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    let v = d
                        .value(&f.schema)
                        .map_err(|e| format!("field `{}`: {e}", f.name))?;
                    fields.push((f.name.clone(), v));
                }
                Ok(Value::Record(fields))
            })?,
            Node::Array(items) => self.nested(|d| {
                let mut out = Vec::new();
                d.blocks(|d| {
                    out.push(d.value(items)?);
                    Ok(())
                })?;
                Ok(Value::Array(out))
            })?,
            Node::Map(values) => self.nested(|d| {
                let mut out = HashMap::new();
                d.blocks(|d| {
                    let n = d.len("map key")?;
                    let k = String::from_utf8(d.take(n)?.to_vec())
                        .map_err(|_| "map key is not valid UTF-8".to_owned())?;
                    let v = d.value(values)?;
                    out.insert(k, v);
                    Ok(())
                })?;
                Ok(Value::Map(out))
            })?,
        })
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Array and map blocks: a count (negative: followed by a byte size), items, until 0.
    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut empty_items = 0usize;
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?; // block size in bytes; not needed
            }
            let count = count.unsigned_abs();
            for _ in 0..count {
                let before = self.input.len();
                item(self)?;
                if self.input.len() == before {
                    empty_items += 1;
                    if empty_items > MAX_EMPTY_ITEMS {
                        return Err(format!("more than {MAX_EMPTY_ITEMS} zero-byte items"));
                    }
                }
            }
        }
    }

    fn big_decimal(&mut self) -> Result<Value, String> {
        // apache-avro's own encoding; hand it the exact length-prefixed bytes.
        let start: &'i [u8] = self.input;
        let n = self.len("big-decimal")?;
        self.take(n)?;
        let mut raw = &start[..start.len() - self.input.len()];
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&Schema::BigDecimal)
            .build()
            .map_err(|e| e.to_string())?;
        reader.read_value(&mut raw).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::writer::datum::GenericDatumWriter;

    fn enc(schema: &Schema, v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_ref(&mut out, v)
            .unwrap();
        out
    }

    #[test]
    fn decodes_what_apache_avro_encodes() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":"int"},{"name":"b","type":"long"},{"name":"c","type":"float"},{"name":"d","type":"double"},
            {"name":"e","type":"bytes"},{"name":"f","type":"string"},{"name":"g","type":"boolean"},{"name":"h","type":"null"},
            {"name":"i","type":{"type":"fixed","name":"F","size":3}},{"name":"j","type":{"type":"enum","name":"E","symbols":["X","Y"]}},
            {"name":"k","type":{"type":"array","items":"long"}},{"name":"l","type":{"type":"map","values":["null","R"]}},
            {"name":"m","type":{"type":"int","logicalType":"date"}},
            {"name":"n","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"o","type":{"type":"string","logicalType":"uuid"}}]}"#,
        )
        .unwrap();
        let inner = Value::Record(vec![
            ("a".into(), Value::Int(-1)),
            ("b".into(), Value::Long(i64::MIN)),
            ("c".into(), Value::Float(1.5)),
            ("d".into(), Value::Double(-2.25)),
            ("e".into(), Value::Bytes(vec![0, 255])),
            ("f".into(), Value::String("héllo".into())),
            ("g".into(), Value::Boolean(true)),
            ("h".into(), Value::Null),
            ("i".into(), Value::Fixed(3, vec![1, 2, 3])),
            ("j".into(), Value::Enum(1, "Y".into())),
            (
                "k".into(),
                Value::Array(vec![Value::Long(1), Value::Long(i64::MAX)]),
            ),
            ("l".into(), Value::Map(HashMap::new())),
            ("m".into(), Value::Date(19000)),
            (
                "n".into(),
                Value::Decimal(apache_avro::Decimal::from(vec![1, 0])),
            ),
            ("o".into(), Value::Uuid(apache_avro::Uuid::from_u128(7))),
        ]);
        let mut outer = inner.clone();
        if let Value::Record(f) = &mut outer {
            f[11].1 = Value::Map(HashMap::from([
                ("x".to_owned(), Value::Union(1, Box::new(inner))),
                ("y".to_owned(), Value::Union(0, Box::new(Value::Null))),
            ]));
        }
        let bytes = enc(&schema, &outer);
        let mut input = &bytes[..];
        assert_eq!(decode(&schema, &mut input).unwrap(), outer);
        assert!(input.is_empty());
        for cut in 0..bytes.len() {
            assert!(
                decode(&schema, &mut &bytes[..cut]).is_err(),
                "cut at {cut} must fail"
            );
        }
    }

    #[test]
    fn hostile_input() {
        let list = Schema::parse_str(
            r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#,
        )
        .unwrap();
        let deep = vec![2u8; 1_000_000];
        assert!(decode(&list, &mut &deep[..])
            .unwrap_err()
            .contains("nesting"));
        let bytes = Schema::parse_str(r#""bytes""#).unwrap();
        // Length 2^62 with 3 bytes of input: no allocation, an error.
        assert!(decode(
            &bytes,
            &mut &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3][..]
        )
        .is_err());
        let nulls = Schema::parse_str(r#"{"type":"array","items":"null"}"#).unwrap();
        assert!(decode(
            &nulls,
            &mut &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..]
        )
        .is_err());
        let long = Schema::parse_str(r#""long""#).unwrap();
        assert!(decode(&long, &mut &[0xff; 11][..]).is_err());
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let b: Vec<u8> = (0..rng.usize(0..40)).map(|_| rng.u8(..)).collect();
            let _ = decode(&list, &mut &b[..]);
        }
    }
}
