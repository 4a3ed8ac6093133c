//! Reading and writing one compacted Parquet file.
//!
//! Files are written to a temporary name, fsynced and renamed into place, so a file that has
//! its final name is complete; whether it belongs to the store is the manifest's call.
//! Snappy-compressed (pure Rust, read by every Parquet tool), dictionary-encoded strings,
//! statistics per row group so other engines can prune by time.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::ColumnarError;
use crate::schema::{EVENTS, EVENTS_DICTIONARY};

fn parquet_err(path: &Path, e: impl std::fmt::Display) -> ColumnarError {
    ColumnarError::Parquet {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes `batches` (all of the events schema) as the file `path`; returns its size.
pub fn write(
    path: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<u64, ColumnarError> {
    let parent = path.parent().expect("files live in a day directory");
    std::fs::create_dir_all(parent)
        .map_err(|e| ColumnarError::io(format!("creating {}", parent.display()), e))?;
    let tmp = path.with_extension("tmp");
    let file = File::create(&tmp)
        .map_err(|e| ColumnarError::io(format!("creating {}", tmp.display()), e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows.max(1024)))
        .set_created_by(format!("iob {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = ArrowWriter::try_new(file, EVENTS.clone(), Some(props))
        .map_err(|e| parquet_err(&tmp, e))?;
    for b in batches {
        w.write(b).map_err(|e| parquet_err(&tmp, e))?;
    }
    let file = w.into_inner().map_err(|e| parquet_err(&tmp, e))?;
    file.sync_all()
        .map_err(|e| ColumnarError::io(format!("syncing {}", tmp.display()), e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    std::fs::rename(&tmp, path)
        .map_err(|e| ColumnarError::io(format!("renaming {}", tmp.display()), e))?;
    iob_govern::sync_dir(parent)
        .map_err(|e| ColumnarError::io(format!("syncing {}", parent.display()), e))?;
    Ok(bytes)
}

/// Reads the columns `indices` (positions in the events schema, ascending) of `path`, text
/// columns as dictionaries when `dictionary` (see [`EVENTS_DICTIONARY`]). A file comes back in
/// as few batches as its size allows (one for a day of up to a million rows), so a day needs
/// no concatenation.
pub fn read(
    path: &Path,
    indices: &[usize],
    dictionary: bool,
) -> Result<Vec<RecordBatch>, ColumnarError> {
    let file = File::open(path)
        .map_err(|e| ColumnarError::io(format!("opening {}", path.display()), e))?;
    let options = match dictionary {
        true => ArrowReaderOptions::new().with_schema(EVENTS_DICTIONARY.clone()),
        false => ArrowReaderOptions::new(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| parquet_err(path, e))?;
    if builder.schema().fields().len() != EVENTS.fields().len() {
        return Err(parquet_err(path, "its columns are not the events schema"));
    }
    let rows = builder.metadata().file_metadata().num_rows().max(1) as usize;
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(rows.min(1 << 20))
        .build()
        .map_err(|e| parquet_err(path, e))?;
    reader
        .map(|b| b.map_err(|e| parquet_err(path, e)))
        .collect()
}
