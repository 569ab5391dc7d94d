//! A view of `apache_avro::Schema` as the Avro spec's types: logical types
//! become their underlying type and named references are followed.

use std::cell::OnceCell;
use std::collections::HashMap;

use apache_avro::schema::{
    EnumSchema, FixedSchema, InnerDecimalSchema, Name, RecordField, RecordSchema, UuidSchema,
};
use apache_avro::Schema;

/// One schema node as the resolution rules see it.
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a [Schema]),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    Fixed(&'a FixedSchema),
}

impl<'a> Node<'a> {
    /// The Avro type name (`record`, `int`...).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Boolean => "boolean",
            Node::Int => "int",
            Node::Long => "long",
            Node::Float => "float",
            Node::Double => "double",
            Node::Bytes => "bytes",
            Node::String => "string",
            Node::Array(_) => "array",
            Node::Map(_) => "map",
            Node::Union(_) => "union",
            Node::Record(_) => "record",
            Node::Enum(_) => "enum",
            Node::Fixed(_) => "fixed",
        }
    }

    /// `record com.acme.Event`, `int`...
    pub(crate) fn describe(&self) -> String {
        match self.name() {
            Some(n) => format!("{} {}", self.kind(), n.fullname(None)),
            None => self.kind().to_owned(),
        }
    }

    pub(crate) fn name(&self) -> Option<&'a Name> {
        match self {
            Node::Record(r) => Some(&r.name),
            Node::Enum(e) => Some(&e.name),
            Node::Fixed(f) => Some(&f.name),
            _ => None,
        }
    }

    /// Identity of a named definition, for memo tables.
    pub(crate) fn identity(&self) -> Option<usize> {
        match self {
            Node::Record(r) => Some(*r as *const RecordSchema as usize),
            Node::Enum(e) => Some(*e as *const EnumSchema as usize),
            Node::Fixed(f) => Some(*f as *const FixedSchema as usize),
            _ => None,
        }
    }
}

/// The named types defined inside one schema, collected on the first
/// reference (most schemas have none, and the hot paths build one per call).
pub(crate) struct Names<'a> {
    root: &'a Schema,
    map: OnceCell<HashMap<&'a Name, Node<'a>>>,
}

impl<'a> Names<'a> {
    pub(crate) fn of(schema: &'a Schema) -> Self {
        Names {
            root: schema,
            map: OnceCell::new(),
        }
    }

    fn map(&self) -> &HashMap<&'a Name, Node<'a>> {
        self.map.get_or_init(|| {
            let mut map = HashMap::new();
            collect(&mut map, self.root, 0);
            map
        })
    }
}

fn collect<'a>(map: &mut HashMap<&'a Name, Node<'a>>, schema: &'a Schema, depth: usize) {
    // Parsed schemas are trees (recursion goes through Ref); the guard is for hand-built ones.
    if depth > 1_000 {
        return;
    }
    match schema {
        Schema::Record(r) => {
            map.insert(&r.name, Node::Record(r));
            for f in &r.fields {
                collect(map, &f.schema, depth + 1);
            }
        }
        Schema::Enum(e) => {
            map.insert(&e.name, Node::Enum(e));
        }
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
            map.insert(&f.name, Node::Fixed(f));
        }
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                map.insert(&f.name, Node::Fixed(f));
            }
        }
        Schema::Array(a) => collect(map, &a.items, depth + 1),
        Schema::Map(m) => collect(map, &m.types, depth + 1),
        Schema::Union(u) => {
            for v in u.variants() {
                collect(map, v, depth + 1);
            }
        }
        _ => {}
    }
}

impl<'a> Names<'a> {
    /// The node of `schema`, following a reference; `Err` names an unknown reference.
    pub(crate) fn node(&self, schema: &'a Schema) -> Result<Node<'a>, String> {
        Ok(match schema {
            Schema::Null => Node::Null,
            Schema::Boolean => Node::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Node::Long,
            Schema::Float => Node::Float,
            Schema::Double => Node::Double,
            Schema::Bytes | Schema::BigDecimal | Schema::Uuid(UuidSchema::Bytes) => Node::Bytes,
            Schema::String | Schema::Uuid(UuidSchema::String) => Node::String,
            Schema::Array(a) => Node::Array(&a.items),
            Schema::Map(m) => Node::Map(&m.types),
            Schema::Union(u) => Node::Union(u.variants()),
            Schema::Record(r) => Node::Record(r),
            Schema::Enum(e) => Node::Enum(e),
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
                Node::Fixed(f)
            }
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Node::Bytes,
                InnerDecimalSchema::Fixed(f) => Node::Fixed(f),
            },
            Schema::Ref { name } => *self.map().get(name).ok_or_else(|| {
                format!(
                    "unresolved reference to named type `{}`",
                    name.fullname(None)
                )
            })?,
        })
    }
}

/// The writer field a reader field reads: same name, or named by one of the
/// reader field's aliases. `Err` when several writer fields match.
pub(crate) fn writer_field<'w>(
    writer: &'w RecordSchema,
    reader_field: &RecordField,
) -> Result<Option<&'w RecordField>, String> {
    let mut found: Option<&RecordField> = None;
    let names = std::iter::once(&reader_field.name).chain(reader_field.aliases.iter());
    for name in names {
        if let Some(w) = writer.fields.iter().find(|f| &f.name == name) {
            match found {
                Some(prev) if !std::ptr::eq(prev, w) => {
                    return Err(format!(
                        "reader field `{}` matches several writer fields (`{}` and `{}`) through its aliases",
                        reader_field.name, prev.name, w.name
                    ))
                }
                _ => found = Some(w),
            }
        }
    }
    Ok(found)
}

/// Avro's name rule for resolution: the unqualified names agree, or one of
/// the reader's aliases is the writer's full name.
pub(crate) fn names_match(reader: &Node<'_>, writer: &Node<'_>) -> bool {
    let (Some(r), Some(w)) = (reader.name(), writer.name()) else {
        return false;
    };
    if r.name() == w.name() {
        return true;
    }
    let aliases = match reader {
        Node::Record(x) => &x.aliases,
        Node::Enum(x) => &x.aliases,
        Node::Fixed(x) => &x.aliases,
        _ => return false,
    };
    let full = w.fullname(None);
    aliases.iter().flatten().any(|a| a.fullname(None) == full)
}
