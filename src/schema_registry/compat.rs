//! Offline schema compatibility: Avro's reader/writer resolution rules
//! (as `org.apache.avro.SchemaCompatibility` applies them) and Confluent's
//! seven compatibility levels on top.
//!
//! ```
//! use apache_avro::Schema;
//! use kafka_ingest::schema_registry::compat::{check_compatibility, CompatibilityLevel};
//! let v1 = Schema::parse_str(r#"{"type":"record","name":"E","fields":[{"name":"a","type":"int"}]}"#).unwrap();
//! let v2 = Schema::parse_str(r#"{"type":"record","name":"E","fields":[
//!     {"name":"a","type":"long"},{"name":"unit","type":"string"}]}"#).unwrap();
//! let report = check_compatibility(CompatibilityLevel::Backward, &v2, &[v1]);
//! assert!(!report.is_compatible());
//! assert_eq!(report.problems[0].incompatibility.to_string(),
//!     "/fields/unit: reader field `unit` is not in the writer's record and has no default");
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use apache_avro::schema::RecordSchema;
use apache_avro::Schema;

use super::names::{names_match, writer_field, Names, Node};

/// Confluent's compatibility levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema can read data written with the latest one.
    Backward,
    /// The new schema can read data written with every earlier one.
    BackwardTransitive,
    /// The latest schema can read data written with the new one.
    Forward,
    /// Every earlier schema can read data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier one.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level.
    pub const ALL: [CompatibilityLevel; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// The registry's name, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Checked against every earlier version, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The new schema must read old data.
    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    /// Old schemas must read new data.
    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = String;

    /// Case-insensitive; `-` may stand for `_`.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(&norm))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|l| l.as_str()).collect();
                format!(
                    "unknown compatibility level `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What kind of rule an incompatibility breaks (Avro's `SchemaIncompatibilityType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IncompatibilityKind {
    /// Types differ and no promotion applies.
    TypeMismatch,
    /// Named types' names differ and no reader alias names the writer's.
    NameMismatch,
    /// Fixed sizes differ.
    FixedSizeMismatch,
    /// The writer's enum has symbols the reader lacks and the reader has no default.
    MissingEnumSymbols,
    /// A reader field is not written and has no default.
    ReaderFieldMissingDefault,
    /// No reader union branch can read a writer type.
    MissingUnionBranch,
    /// A reader field's aliases match several writer fields (Avro's checker throws).
    AmbiguousField,
    /// A reference to a named type that the schema does not define.
    UnresolvedReference,
}

/// One reason a reader cannot read a writer's data, at a path into the reader schema
/// (`/fields/data/fields/unit`, `/items`, `/values`, writer union branch `/2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The rule broken.
    pub kind: IncompatibilityKind,
    /// Where, as `/`-separated steps from the root (`/` is the root).
    pub path: String,
    /// Why, in words.
    pub message: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why `reader` cannot read data written with `writer`; empty when it can.
pub fn can_read(reader: &Schema, writer: &Schema) -> Vec<Incompatibility> {
    let rn = Names::of(reader);
    let wn = Names::of(writer);
    Checker::new(&rn, &wn).check(reader, writer)
}

/// Which way a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Backward: the new schema reading data of an earlier one.
    NewReadsOld,
    /// Forward: an earlier schema reading data of the new one.
    OldReadsNew,
}

/// An incompatibility between the new schema and one earlier version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index into `previous` (0 = oldest).
    pub previous: usize,
    /// Which schema was the reader.
    pub direction: Direction,
    /// What and where.
    pub incompatibility: Incompatibility,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.previous + 1;
        match self.direction {
            Direction::NewReadsOld => {
                write!(f, "new schema cannot read data written with version {n}: ")?
            }
            Direction::OldReadsNew => write!(
                f,
                "version {n} cannot read data written with the new schema: "
            )?,
        }
        write!(f, "{}", self.incompatibility)
    }
}

/// The verdict of [`check_compatibility`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityReport {
    /// The level checked.
    pub level: CompatibilityLevel,
    /// Empty when compatible.
    pub problems: Vec<Problem>,
}

impl CompatibilityReport {
    /// Whether the new schema may be registered.
    pub fn is_compatible(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether `new` may follow `previous` (oldest first) under `level`, as a
/// registry decides: non-transitive levels look at the last previous only.
pub fn check_compatibility(
    level: CompatibilityLevel,
    new: &Schema,
    previous: &[Schema],
) -> CompatibilityReport {
    let mut problems = Vec::new();
    let from = if level.is_transitive() {
        0
    } else {
        previous.len().saturating_sub(1)
    };
    for (i, old) in previous.iter().enumerate().skip(from) {
        if level.checks_backward() {
            problems.extend(
                can_read(new, old)
                    .into_iter()
                    .map(|incompatibility| Problem {
                        previous: i,
                        direction: Direction::NewReadsOld,
                        incompatibility,
                    }),
            );
        }
        if level.checks_forward() {
            problems.extend(
                can_read(old, new)
                    .into_iter()
                    .map(|incompatibility| Problem {
                        previous: i,
                        direction: Direction::OldReadsNew,
                        incompatibility,
                    }),
            );
        }
    }
    CompatibilityReport { level, problems }
}

enum Memo {
    InProgress,
    Done(Vec<Incompatibility>),
}

/// Avro's `ReaderWriterCompatibilityChecker`: named pairs are memoised, and a
/// pair met again while it is being checked is assumed compatible (recursion).
pub(crate) struct Checker<'n, 'r, 'w> {
    rnames: &'n Names<'r>,
    wnames: &'n Names<'w>,
    memo: HashMap<(usize, usize), Memo>,
    path: Vec<String>,
}

impl<'n, 'r, 'w> Checker<'n, 'r, 'w> {
    pub(crate) fn new(rnames: &'n Names<'r>, wnames: &'n Names<'w>) -> Self {
        Checker {
            rnames,
            wnames,
            memo: HashMap::new(),
            path: Vec::new(),
        }
    }

    fn here(&self) -> String {
        if self.path.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}", self.path.join("/"))
        }
    }

    fn issue(&self, kind: IncompatibilityKind, message: String) -> Incompatibility {
        Incompatibility {
            kind,
            path: self.here(),
            message,
        }
    }

    fn at<T>(&mut self, step: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(step.to_owned());
        let r = f(self);
        self.path.pop();
        r
    }

    pub(crate) fn check(&mut self, reader: &'r Schema, writer: &'w Schema) -> Vec<Incompatibility> {
        let r = match self.rnames.node(reader) {
            Ok(n) => n,
            Err(e) => {
                return vec![self.issue(
                    IncompatibilityKind::UnresolvedReference,
                    format!("reader: {e}"),
                )]
            }
        };
        let w = match self.wnames.node(writer) {
            Ok(n) => n,
            Err(e) => {
                return vec![self.issue(
                    IncompatibilityKind::UnresolvedReference,
                    format!("writer: {e}"),
                )]
            }
        };
        self.check_nodes(r, w)
    }

    pub(crate) fn check_nodes(&mut self, r: Node<'r>, w: Node<'w>) -> Vec<Incompatibility> {
        let key = r.identity().zip(w.identity());
        if let Some(key) = key {
            match self.memo.get(&key) {
                Some(Memo::InProgress) => return Vec::new(),
                Some(Memo::Done(v)) => return v.clone(),
                None => {
                    self.memo.insert(key, Memo::InProgress);
                }
            }
        }
        let result = self.calculate(r, w);
        if let Some(key) = key {
            self.memo.insert(key, Memo::Done(result.clone()));
        }
        result
    }

    fn calculate(&mut self, r: Node<'r>, w: Node<'w>) -> Vec<Incompatibility> {
        use Node::*;
        match (r, w) {
            (Null, Null)
            | (Boolean, Boolean)
            | (Int, Int)
            | (Long, Long)
            | (Float, Float)
            | (Double, Double)
            | (Bytes, Bytes)
            | (String, String) => Vec::new(),
            // Promotions.
            (Long, Int)
            | (Float, Int | Long)
            | (Double, Int | Long | Float)
            | (Bytes, String)
            | (String, Bytes) => Vec::new(),
            (Array(ri), Array(wi)) => self.at("items", |c| c.check(ri, wi)),
            (Map(rv), Map(wv)) => self.at("values", |c| c.check(rv, wv)),
            (Fixed(rf), Fixed(wf)) => {
                let mut out = self.check_names(r, w);
                if rf.size != wf.size {
                    out.push(self.at("size", |c| {
                        c.issue(
                            IncompatibilityKind::FixedSizeMismatch,
                            format!(
                                "reader fixed has size {}, writer's has size {}",
                                rf.size, wf.size
                            ),
                        )
                    }));
                }
                out
            }
            (Enum(re), Enum(we)) => {
                let mut out = self.check_names(r, w);
                let missing: BTreeSet<&str> = we
                    .symbols
                    .iter()
                    .filter(|s| !re.symbols.contains(s))
                    .map(std::string::String::as_str)
                    .collect();
                let default_ok = re.default.as_ref().is_some_and(|d| re.symbols.contains(d));
                if !missing.is_empty() && !default_ok {
                    let list: Vec<&str> = missing.into_iter().collect();
                    out.push(self.at("symbols", |c| {
                        c.issue(
                            IncompatibilityKind::MissingEnumSymbols,
                            format!(
                                "reader enum lacks writer symbols [{}] and has no default",
                                list.join(", ")
                            ),
                        )
                    }));
                }
                out
            }
            (Record(rr), Record(wr)) => {
                let mut out = self.check_names(r, w);
                out.extend(self.at("fields", |c| c.check_fields(rr, wr)));
                out
            }
            (Union(_), Union(wb)) => {
                // Every writer branch must be readable by the reader union.
                let mut out = Vec::new();
                for (i, b) in wb.iter().enumerate() {
                    let step = i.to_string();
                    if let Some(issue) = self.at(&step, |c| c.union_lacks(r, b)) {
                        out.push(issue);
                    }
                }
                out
            }
            (_, Union(wb)) => {
                let mut out = Vec::new();
                for (i, b) in wb.iter().enumerate() {
                    let step = i.to_string();
                    out.extend(self.at(&step, |c| match c.wnames.node(b) {
                        Ok(bn) => c.check_nodes(r, bn),
                        Err(e) => vec![c.issue(
                            IncompatibilityKind::UnresolvedReference,
                            format!("writer: {e}"),
                        )],
                    }));
                }
                out
            }
            (Union(_), _) => match self.reader_union_branch(r, w) {
                true => Vec::new(),
                false => vec![self.issue(
                    IncompatibilityKind::MissingUnionBranch,
                    format!(
                        "reader union has no branch that can read the writer's {}",
                        w.describe()
                    ),
                )],
            },
            _ => vec![self.issue(
                IncompatibilityKind::TypeMismatch,
                format!(
                    "reader type {} cannot read writer type {}",
                    r.describe(),
                    w.describe()
                ),
            )],
        }
    }

    /// For a writer union branch: `None` when some reader branch reads it.
    fn union_lacks(&mut self, r: Node<'r>, wb: &'w Schema) -> Option<Incompatibility> {
        let w = match self.wnames.node(wb) {
            Ok(n) => n,
            Err(e) => {
                return Some(self.issue(
                    IncompatibilityKind::UnresolvedReference,
                    format!("writer: {e}"),
                ))
            }
        };
        // A union inside a union is invalid Avro; treat it like any non-matching writer.
        if self.reader_union_branch(r, w) {
            return None;
        }
        Some(self.issue(
            IncompatibilityKind::MissingUnionBranch,
            format!(
                "reader union has no branch that can read the writer's {}",
                w.describe()
            ),
        ))
    }

    /// Whether any branch of reader union `r` reads `w` (the checker's rule;
    /// read-time branch choice is in `resolve`).
    fn reader_union_branch(&mut self, r: Node<'r>, w: Node<'w>) -> bool {
        let Node::Union(branches) = r else {
            return false;
        };
        for b in branches {
            let Ok(bn) = self.rnames.node(b) else {
                continue;
            };
            if self.check_nodes(bn, w).is_empty() {
                return true;
            }
        }
        false
    }

    fn check_names(&mut self, r: Node<'r>, w: Node<'w>) -> Vec<Incompatibility> {
        if names_match(&r, &w) {
            return Vec::new();
        }
        let (rn, wn) = (
            r.name().map(|n| n.fullname(None)),
            w.name().map(|n| n.fullname(None)),
        );
        vec![self.at("name", |c| {
            c.issue(
                IncompatibilityKind::NameMismatch,
                format!(
                    "reader {} `{}` does not match writer name `{}` (names compare without namespace; no reader alias names it)",
                    r.kind(),
                    rn.unwrap_or_default(),
                    wn.unwrap_or_default()
                ),
            )
        })]
    }

    fn check_fields(&mut self, rr: &'r RecordSchema, wr: &'w RecordSchema) -> Vec<Incompatibility> {
        let mut out = Vec::new();
        for rf in &rr.fields {
            self.path.push(rf.name.clone());
            match writer_field(wr, rf) {
                Ok(Some(wf)) => out.extend(self.check(&rf.schema, &wf.schema)),
                Ok(None) if rf.default.is_some() => {}
                Ok(None) => out.push(self.issue(
                    IncompatibilityKind::ReaderFieldMissingDefault,
                    format!(
                        "reader field `{}` is not in the writer's record and has no default",
                        rf.name
                    ),
                )),
                Err(e) => out.push(self.issue(IncompatibilityKind::AmbiguousField, e)),
            }
            self.path.pop();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(json: &str) -> Schema {
        Schema::parse_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn ok(r: &str, w: &str) -> bool {
        can_read(&s(r), &s(w)).is_empty()
    }

    #[test]
    fn primitives_and_promotions() {
        assert!(ok(r#""long""#, r#""int""#));
        assert!(!ok(r#""int""#, r#""long""#));
        assert!(ok(r#""double""#, r#""float""#));
        assert!(ok(r#""string""#, r#""bytes""#) && ok(r#""bytes""#, r#""string""#));
        assert!(!ok(r#""boolean""#, r#""null""#));
        // Logical types read as their underlying type.
        assert!(ok(
            r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            r#""int""#
        ));
    }

    #[test]
    fn paths_name_the_nested_field() {
        let w = r#"{"type":"record","name":"E","fields":[{"name":"data","type":{"type":"record","name":"D","fields":[]}}]}"#;
        let r = r#"{"type":"record","name":"E","fields":[{"name":"data","type":{"type":"record","name":"D","fields":[
            {"name":"unit","type":"string"}]}}]}"#;
        let v = can_read(&s(r), &s(w));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, "/fields/data/fields/unit");
        assert_eq!(v[0].kind, IncompatibilityKind::ReaderFieldMissingDefault);
    }

    #[test]
    fn recursive_records() {
        let list = |extra: &str| {
            format!(
                r#"{{"type":"record","name":"L","fields":[{{"name":"v","type":"int"}},{{"name":"next","type":["null","L"]}}{extra}]}}"#
            )
        };
        assert!(ok(&list(""), &list("")));
        assert!(ok(
            &list(r#",{"name":"x","type":"int","default":0}"#),
            &list("")
        ));
        let v = can_read(&s(&list(r#",{"name":"x","type":"int"}"#)), &s(&list("")));
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn levels() {
        let v1 = s(r#"{"type":"record","name":"E","fields":[{"name":"a","type":"int"}]}"#);
        let v2 = s(
            r#"{"type":"record","name":"E","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":1}]}"#,
        );
        let v3 =
            s(r#"{"type":"record","name":"E","fields":[{"name":"b","type":"int","default":1}]}"#);
        use CompatibilityLevel::*;
        assert!(check_compatibility(Full, &v2, std::slice::from_ref(&v1)).is_compatible());
        // v3 drops `a` (no default): backward yes, forward no.
        assert!(check_compatibility(Backward, &v3, &[v1.clone(), v2.clone()]).is_compatible());
        assert!(!check_compatibility(Forward, &v3, &[v1.clone(), v2.clone()]).is_compatible());
        assert!(check_compatibility(None, &v3, std::slice::from_ref(&v1)).is_compatible());
        assert_eq!(
            "full-transitive".parse::<CompatibilityLevel>(),
            Ok(FullTransitive)
        );
        assert!("fuller"
            .parse::<CompatibilityLevel>()
            .unwrap_err()
            .contains("BACKWARD_TRANSITIVE"));
    }
}
