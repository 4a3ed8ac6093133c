//! The model file: round trip, malformed files (truncated, flipped, other versions) are clear
//! errors and never panics, and a file written by format version 1 still loads.

use iob_engine::RecommendConfig;
use iob_recommend::artifact::{self, decode, encode};
use iob_recommend::catalog::Catalog;
use iob_recommend::matrix::Interaction;
use iob_recommend::model::{ModelSet, TrainData};

/// A small model: 3 persons, 3 items.
pub fn small() -> ModelSet {
    let mut catalog = Catalog::default();
    for id in ["x", "y", "z"] {
        let i = catalog.intern(id);
        catalog.set_prop(i, "category", if id == "z" { "tents" } else { "boots" });
    }
    // The matrix of ease.rs's hand-checked case.
    let pairs = [(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)];
    let interactions = pairs
        .iter()
        .map(|&(row, item)| Interaction {
            row,
            item,
            weight: 1.0,
            at: 0,
        })
        .collect();
    let mut cfg = RecommendConfig::default();
    cfg.ease.lambda = 1.0;
    cfg.als.factors = 2;
    cfg.half_life_days = 0.0;
    let data = TrainData {
        persons: vec![10, 11, 12],
        interactions,
        catalog,
        now: 5,
    };
    ModelSet::train(7, data, &cfg).0
}

#[test]
fn round_trip() {
    let m = small();
    let back = decode(&encode(&m)).unwrap();
    assert_eq!(back, m);
    // EASE weights as computed by hand in ease.rs's test: B[0][1] = 1/2.
    assert!((back.ease.as_ref().unwrap().b[1] - 0.5).abs() < 1e-6);
}

#[test]
fn malformed_files_are_clear_errors() {
    let bytes = encode(&small());
    for cut in [0, 5, 23, 24, 40, bytes.len() - 1] {
        let e = decode(&bytes[..cut]).unwrap_err();
        assert!(
            e.contains("header") || e.contains("truncated"),
            "cut {cut}: {e}"
        );
    }
    for at in [30, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        assert!(decode(&b).unwrap_err().contains("checksum"), "flip at {at}");
    }
    let mut b = bytes.clone();
    b[8] = 9;
    let e = decode(&b).unwrap_err();
    assert!(e.contains("version 9") && e.contains("iob train"), "{e}");
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(decode(&b).unwrap_err().contains("magic"));
    // Through the file API the error names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model-000001.bin");
    std::fs::write(&path, &bytes[..100]).unwrap();
    let e = artifact::load_latest(dir.path()).unwrap_err().to_string();
    assert!(e.contains("model-000001.bin"), "{e}");
}

/// Written by format version 1 (`IOB_WRITE_FIXTURE=1` rewrites it; never do that after a
/// format change: add a version instead).
#[test]
fn version_1_fixture_still_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-v1.bin");
    if std::env::var_os("IOB_WRITE_FIXTURE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, encode(&small())).unwrap();
    }
    let m = artifact::load(&path).unwrap();
    assert_eq!(m.seq, 7);
    assert_eq!(m.catalog.id(2), "z");
    assert_eq!(m.catalog.prop(2, "category"), Some("tents"));
    assert_eq!(m.als.as_ref().unwrap().persons, vec![10, 11, 12]);
    assert!((m.ease.as_ref().unwrap().b[1] - 0.5).abs() < 1e-6);
    assert!(m.knn.is_some());
}

#[test]
fn save_keeps_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = small();
    artifact::save(dir.path(), &m).unwrap();
    m.seq = 8;
    artifact::save(dir.path(), &m).unwrap();
    let files = artifact::list(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, 8);
    assert_eq!(artifact::load_latest(dir.path()).unwrap().unwrap().seq, 8);
}
