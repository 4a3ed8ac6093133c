//! The columnar store as an [`EventSource`] for the behavioral analyses: a scan under one
//! purpose's directory, rows of unresolved events left out (analyses count persons).

use iob_analyses::{AnalysisError, DayChunk, EventSource};
use iob_engine::{Engine, PersonDirectory};

use crate::{Columnar, ScanRequest};

/// The events one purpose may see, for the analyses.
pub struct ColumnarSource<'a> {
    pub columnar: &'a Columnar,
    pub engine: &'a Engine,
    pub directory: &'a PersonDirectory,
}

/// Kernel errors pass through a columnar scan as this (and come back out unchanged).
enum ScanError {
    Store(crate::ColumnarError),
    Kernel(AnalysisError),
}

impl From<crate::ColumnarError> for ScanError {
    fn from(e: crate::ColumnarError) -> Self {
        ScanError::Store(e)
    }
}

impl EventSource for ColumnarSource<'_> {
    fn scan(
        &self,
        columns: &[&str],
        range: Option<(i64, i64)>,
        f: &mut dyn FnMut(DayChunk) -> Result<(), AnalysisError>,
    ) -> Result<(), AnalysisError> {
        let req = ScanRequest {
            columns: iob_analyses::scan_columns(columns)
                .into_iter()
                .map(str::to_string)
                .collect(),
            range,
            directory: self.directory,
            keep_unresolved: false,
            dictionary_text: true,
        };
        let r = self.columnar.scan::<ScanError>(self.engine, &req, |d| {
            f(DayChunk {
                day: d.day,
                batch: d.batch,
            })
            .map_err(ScanError::Kernel)
        });
        match r {
            Ok(()) => Ok(()),
            Err(ScanError::Kernel(e)) => Err(e),
            Err(ScanError::Store(crate::ColumnarError::UnknownColumn(c))) => Err(
                AnalysisError::request("columns", format!("unknown column `{c}`")),
            ),
            Err(ScanError::Store(e)) => Err(AnalysisError::Source(e.to_string())),
        }
    }
}
