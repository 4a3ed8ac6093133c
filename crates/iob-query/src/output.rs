//! Query results as text or files: an aligned table, CSV, JSON (an array of objects), JSON
//! Lines, or Parquet.

use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::QueryError;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    JsonLines,
    Parquet,
}

impl FromStr for Format {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Ok(match s {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::JsonLines,
            "parquet" => Format::Parquet,
            other => return Err(QueryError::Format(other.to_string())),
        })
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::JsonLines => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

fn failed(e: impl std::fmt::Display) -> QueryError {
    QueryError::Execution(format!("writing the result: {e}"))
}

/// Renders `batches` in `format`.
pub fn render(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> Result<Vec<u8>, QueryError> {
    use datafusion::arrow::{csv, json, util::pretty};
    let mut out = Vec::new();
    match format {
        Format::Table => {
            let t = pretty::pretty_format_batches(batches).map_err(failed)?;
            out = format!("{t}\n").into_bytes();
        }
        Format::Csv => {
            {
                let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
                for b in batches {
                    w.write(b).map_err(failed)?;
                }
            }
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                out.extend_from_slice(names.join(",").as_bytes());
                out.push(b'\n');
            }
        }
        Format::Json => {
            let mut w = json::ArrayWriter::new(&mut out);
            for b in batches {
                w.write(b).map_err(failed)?;
            }
            w.finish().map_err(failed)?;
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
        }
        Format::JsonLines => {
            let mut w = json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b).map_err(failed)?;
            }
            w.finish().map_err(failed)?;
        }
        Format::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)
                .map_err(failed)?;
            for b in batches {
                w.write(b).map_err(failed)?;
            }
            w.close().map_err(failed)?;
        }
    }
    Ok(out)
}
