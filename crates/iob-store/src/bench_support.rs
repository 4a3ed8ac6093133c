//! Helpers for benchmarks that put the store's throughput next to the disk's: the engine's
//! end-to-end benchmark prints both, so a reader can tell "slow store" from "slow disk".
//!
//! This module must never run on a hot path or touch a data directory's files: it only
//! creates and deletes its own scratch file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::error::{IoContext, StoreError};

/// Sequential write speed of the disk holding `dir`, in MB/s (10^6 bytes): writes `bytes`
/// (rounded up to whole MiB; 256 MiB is a good value) in 1 MiB chunks, fsyncs, deletes the file.
pub fn measure_disk_seq_write(dir: &Path, bytes: u64) -> Result<f64, StoreError> {
    let path = dir.join(format!(".iob-disk-probe-{}", std::process::id()));
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let chunks = bytes.div_ceil(chunk.len() as u64).max(1);
    let start = Instant::now();
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .ctx("create", &path)?;
        for _ in 0..chunks {
            f.write_all(&chunk).ctx("write", &path)?;
        }
        f.sync_all().ctx("fsync", &path)
    })();
    let secs = start.elapsed().as_secs_f64();
    let _ = fs::remove_file(&path);
    result?;
    Ok((chunks * chunk.len() as u64) as f64 / 1e6 / secs.max(1e-9))
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_something_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let mbps = super::measure_disk_seq_write(d.path(), 2 << 20).unwrap();
        assert!(mbps > 0.0);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
