//! Runs the peer script (`bench/recommend/implicit_peer.py`: `implicit`'s ALS and BPR) on a
//! split's files and reads its results, so both libraries are measured on the same data in one
//! run. The script prints one JSON object: `{"results": [AlgoResult...]}`.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use crate::error::{RecommendError, Result};
use crate::eval::{AlgoResult, Metrics};

#[derive(Deserialize)]
struct PeerMetrics {
    recall: f64,
    ndcg: f64,
    mrr: f64,
    hit: f64,
    precision: f64,
    persons: usize,
}

#[derive(Deserialize)]
struct PeerResult {
    algorithm: String,
    params: String,
    valid: PeerMetrics,
    test: PeerMetrics,
    train_secs: f64,
}

#[derive(Deserialize)]
struct PeerOutput {
    results: Vec<PeerResult>,
}

impl From<PeerMetrics> for Metrics {
    fn from(m: PeerMetrics) -> Metrics {
        Metrics {
            recall: m.recall,
            ndcg: m.ndcg,
            mrr: m.mrr,
            hit: m.hit,
            precision: m.precision,
            persons: m.persons,
        }
    }
}

/// Runs `python script --split dir [extra…]` with one BLAS thread and `threads` workers.
pub fn run(
    python: &Path,
    script: &Path,
    split_dir: &Path,
    threads: usize,
    quick: bool,
) -> Result<Vec<AlgoResult>> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg("--split")
        .arg(split_dir)
        .arg("--threads")
        .arg(threads.to_string())
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1");
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().map_err(|e| {
        RecommendError::io(
            format!("running {} {}", python.display(), script.display()),
            e,
        )
    })?;
    if !out.status.success() {
        return Err(RecommendError::Dataset {
            name: split_dir.display().to_string(),
            reason: format!(
                "peer script failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        });
    }
    let parsed: PeerOutput =
        serde_json::from_slice(&out.stdout).map_err(|e| RecommendError::Dataset {
            name: split_dir.display().to_string(),
            reason: format!("peer script printed no result JSON: {e}"),
        })?;
    Ok(parsed
        .results
        .into_iter()
        .map(|r| AlgoResult {
            algorithm: r.algorithm,
            params: r.params,
            valid: r.valid.into(),
            test: r.test.into(),
            train_secs: r.train_secs,
        })
        .collect())
}
