//! Property filters: `{"property": "...", "op": "...", "value": ...}`.
//!
//! Semantics (typed, defined for every combination, never an error on data):
//! * `eq` / `in`: a number literal matches a number, or a string that parses to the same number;
//!   a string literal matches the same string, or a number equal to the literal parsed as a
//!   number; `true`/`false` match booleans (and the strings "true"/"false").
//! * `ne` / `not_in` are the negations of `eq` / `in`, so they **match rows where the property is
//!   missing** (PostHog's "is not").
//! * `gt`, `gte`, `lt`, `lte` need a number literal (request error otherwise) and match only
//!   values that are numbers or numeric strings; anything else does not match.
//! * `contains` needs a string literal; matches string values containing it (case-sensitive).
//! * `is_set` / `is_not_set` take no value: present and not null / missing or null.
//!
//! Request errors (checked before any row is read) name the field, e.g. `steps[1].filters[0].value`:
//! a non-numeric string compared with the numeric column `value`, a missing or superfluous
//! `value`, an unknown property.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AnalysisError;
use crate::columns::Chunk;
use crate::property::{Property, Reader, Val};

/// A filter as it arrives in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub property: String,
    pub op: FilterOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Ne,
    In,
    NotIn,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    IsSet,
    IsNotSet,
}

impl Filter {
    pub fn new(property: &str, op: FilterOp, value: Option<Value>) -> Self {
        Filter {
            property: property.into(),
            op,
            value,
        }
    }
}

#[derive(Debug, Clone)]
enum Lit {
    Str(String, Option<f64>),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone)]
enum Test {
    In(Vec<Lit>),
    Cmp(FilterOp, f64),
    Contains(String),
    IsSet,
}

/// A validated filter.
#[derive(Debug, Clone)]
pub struct Compiled {
    prop: Property,
    test: Test,
    negate: bool,
}

/// Validated filters that all must match (an empty list matches every row).
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Compiled>);

fn lit(field: &str, v: &Value, numeric_column: bool) -> Result<Lit, AnalysisError> {
    let l = match v {
        Value::String(s) => Lit::Str(s.clone(), s.trim().parse::<f64>().ok()),
        Value::Number(n) => Lit::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Lit::Bool(*b),
        other => {
            return Err(AnalysisError::request(
                field,
                format!("expected a string, number or boolean, got {other}"),
            ));
        }
    };
    if numeric_column && !matches!(l, Lit::Num(_) | Lit::Str(_, Some(_))) {
        return Err(AnalysisError::request(
            field,
            format!("the property is a number column; {v} is not a number"),
        ));
    }
    Ok(l)
}

impl Filters {
    /// Validates `filters`; `field` is their request path (e.g. `filters`).
    pub fn compile(field: &str, filters: &[Filter]) -> Result<Self, AnalysisError> {
        let mut out = Vec::with_capacity(filters.len());
        for (i, f) in filters.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let prop = Property::parse(&format!("{at}.property"), &f.property)?;
            let numeric = matches!(prop, Property::Column { numeric: true, .. });
            let vfield = format!("{at}.value");
            let need = |v: &Option<Value>| {
                v.clone().ok_or_else(|| {
                    AnalysisError::request(&vfield, format!("`{:?}` needs a value", f.op))
                })
            };
            let (test, negate) = match f.op {
                FilterOp::Eq | FilterOp::Ne => {
                    let v = need(&f.value)?;
                    (
                        Test::In(vec![lit(&vfield, &v, numeric)?]),
                        f.op == FilterOp::Ne,
                    )
                }
                FilterOp::In | FilterOp::NotIn => {
                    let Value::Array(items) = need(&f.value)? else {
                        return Err(AnalysisError::request(&vfield, "expected an array"));
                    };
                    let lits = items
                        .iter()
                        .enumerate()
                        .map(|(j, v)| lit(&format!("{vfield}[{j}]"), v, numeric))
                        .collect::<Result<_, _>>()?;
                    (Test::In(lits), f.op == FilterOp::NotIn)
                }
                FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                    let v = need(&f.value)?;
                    let Some(x) = v.as_f64() else {
                        return Err(AnalysisError::request(
                            &vfield,
                            format!("`{:?}` compares numbers; {v} is not a number", f.op),
                        ));
                    };
                    (Test::Cmp(f.op, x), false)
                }
                FilterOp::Contains => match need(&f.value)? {
                    Value::String(s) => (Test::Contains(s), false),
                    v => {
                        return Err(AnalysisError::request(
                            &vfield,
                            format!("`contains` needs a string, got {v}"),
                        ));
                    }
                },
                FilterOp::IsSet | FilterOp::IsNotSet => {
                    if f.value.is_some() {
                        return Err(AnalysisError::request(
                            &vfield,
                            "is_set/is_not_set take no value",
                        ));
                    }
                    (Test::IsSet, f.op == FilterOp::IsNotSet)
                }
            };
            out.push(Compiled { prop, test, negate });
        }
        Ok(Filters(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns the filters read.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|c| c.prop.column())
    }

    /// Binds the filters to one batch.
    pub fn bind<'a>(&'a self, chunk: &Chunk<'a>) -> Result<Bound<'a>, AnalysisError> {
        let readers = self
            .0
            .iter()
            .map(|c| c.prop.bind(chunk))
            .collect::<Result<_, _>>()?;
        Ok(Bound {
            filters: &self.0,
            readers,
        })
    }
}

/// Filters bound to one batch.
pub struct Bound<'a> {
    filters: &'a [Compiled],
    readers: Vec<Reader<'a>>,
}

impl Bound<'_> {
    /// Whether row `i` passes every filter.
    pub fn matches(&self, i: usize) -> bool {
        self.filters
            .iter()
            .zip(&self.readers)
            .all(|(f, r)| f.matches(&r.get(i)))
    }
}

fn eq(v: &Val, l: &Lit) -> bool {
    match (v, l) {
        (Val::Missing, _) => false,
        (Val::Str(s), Lit::Str(t, _)) => s == t,
        (Val::Num(x), Lit::Str(_, Some(y))) | (Val::Num(x), Lit::Num(y)) => x == y,
        (Val::Str(_), Lit::Num(y)) => v.as_num() == Some(*y),
        (Val::Bool(b), Lit::Bool(c)) => b == c,
        (Val::Bool(b), Lit::Str(t, _)) => t == if *b { "true" } else { "false" },
        (Val::Str(s), Lit::Bool(c)) => s == if *c { "true" } else { "false" },
        (Val::Other(s), Lit::Str(t, _)) => s == t,
        _ => false,
    }
}

impl Compiled {
    fn matches(&self, v: &Val) -> bool {
        let hit = match &self.test {
            Test::In(lits) => lits.iter().any(|l| eq(v, l)),
            Test::Cmp(op, y) => match v.as_num() {
                None => false,
                Some(x) => match op {
                    FilterOp::Gt => x > *y,
                    FilterOp::Gte => x >= *y,
                    FilterOp::Lt => x < *y,
                    _ => x <= *y,
                },
            },
            Test::Contains(t) => matches!(v, Val::Str(s) if s.contains(t.as_str())),
            Test::IsSet => !matches!(v, Val::Missing),
        };
        hit != self.negate
    }
}
