//! The evaluation datasets, read from `shared/data` as found there (see each folder's README):
//! MovieLens 100K and latest-small (every rating is an interaction, as RecBole does), and the
//! session datasets YOOCHOOSE 1/64-100k (train_full + test) and DIGINETICA sample (a session is
//! the "person"). Repeated interactions of one person with one item keep the latest time.
//!
//! The only module of the crate, with `split.rs`'s writer, that reads or writes files; it says
//! which file is missing instead of skipping a dataset silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{RecommendError, Result};

/// A dataset as dense indices: `(person, item, time ms)`, one per (person, item).
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub n_users: usize,
    pub n_items: usize,
    pub interactions: Vec<(u32, u32, i64)>,
}

/// The datasets `iob eval recommend` knows, by name, with the folder each is read from.
pub const DATASETS: [(&str, &str); 4] = [
    ("ml-100k", "movielens-100k"),
    ("ml-latest-small", "movielens-latest-small"),
    ("yoochoose-100k", "yoochoose-rsc15-100k"),
    ("diginetica-sample", "diginetica-sample"),
];

/// Loads dataset `name` from `root` (the `shared/data` folder).
pub fn load(root: &Path, name: &str) -> Result<Dataset> {
    let folder = DATASETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| root.join(f))
        .ok_or_else(|| RecommendError::Dataset {
            name: name.into(),
            reason: format!("unknown; known: {}", DATASETS.map(|(n, _)| n).join(", ")),
        })?;
    let mut b = Builder::default();
    match name {
        "ml-100k" => {
            for line in read(name, &folder.join("u.data"))?.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if f.len() >= 4 {
                    b.add(f[0], f[1], parse_i64(name, f[3])? * 1000);
                }
            }
        }
        "ml-latest-small" => {
            for line in read(name, &folder.join("ratings.csv"))?.lines().skip(1) {
                let f: Vec<&str> = line.split(',').collect();
                if f.len() >= 4 {
                    b.add(f[0], f[1], parse_i64(name, f[3])? * 1000);
                }
            }
        }
        "yoochoose-100k" => {
            for file in [
                "yoochoose-clicks-100k_train_full.txt",
                "yoochoose-clicks-100k_test.txt",
            ] {
                for line in read(name, &folder.join(file))?.lines().skip(1) {
                    let f: Vec<&str> = line.split('\t').collect();
                    if f.len() >= 3 {
                        let t: f64 = f[2].trim().parse().map_err(|_| bad(name, f[2]))?;
                        b.add(f[0], f[1], (t * 1000.0) as i64);
                    }
                }
            }
        }
        "diginetica-sample" => {
            let text = read(name, &folder.join("sample_train-item-views.csv"))?;
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split(';').collect();
                if f.len() >= 5 {
                    // Day from the date, order within the session from the time frame.
                    let day = days(f[4]).ok_or_else(|| bad(name, f[4]))?;
                    let frame = parse_i64(name, f[3])?;
                    b.add(f[0], f[2], day * 86_400_000 + frame);
                }
            }
        }
        _ => unreachable!("checked against DATASETS"),
    }
    Ok(b.finish(name))
}

/// `shared/data` next to the repository: `../shared/data` from the repository root, found
/// from `start` upwards.
pub fn default_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|a| {
        let p = a.join("../shared/data");
        p.is_dir().then_some(p).or_else(|| {
            let q = a.join("shared/data");
            q.is_dir().then_some(q)
        })
    })
}

fn read(name: &str, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| RecommendError::Dataset {
        name: name.into(),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn bad(name: &str, v: &str) -> RecommendError {
    RecommendError::Dataset {
        name: name.into(),
        reason: format!(
            "unreadable value `{}`",
            v.chars().take(40).collect::<String>()
        ),
    }
}

fn parse_i64(name: &str, v: &str) -> Result<i64> {
    v.trim().parse().map_err(|_| bad(name, v))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
fn days(date: &str) -> Option<i64> {
    let mut it = date.trim().split('-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[derive(Default)]
struct Builder {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
    latest: HashMap<(u32, u32), i64>,
    order: Vec<(u32, u32)>,
}

impl Builder {
    fn add(&mut self, user: &str, item: &str, at: i64) {
        let n = self.users.len() as u32;
        let u = *self.users.entry(user.trim().to_string()).or_insert(n);
        let n = self.items.len() as u32;
        let i = *self.items.entry(item.trim().to_string()).or_insert(n);
        match self.latest.get_mut(&(u, i)) {
            Some(t) => *t = (*t).max(at),
            None => {
                self.latest.insert((u, i), at);
                self.order.push((u, i));
            }
        }
    }

    fn finish(self, name: &str) -> Dataset {
        let interactions = self
            .order
            .iter()
            .map(|&(u, i)| (u, i, self.latest[&(u, i)]))
            .collect();
        Dataset {
            name: name.into(),
            n_users: self.users.len(),
            n_items: self.items.len(),
            interactions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2016-01-03"), Some(16_803));
        assert_eq!(days("bad"), None);
    }

    #[test]
    fn missing_dataset_says_which_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path(), "ml-100k").unwrap_err().to_string();
        assert!(e.contains("u.data"), "{e}");
        assert!(load(dir.path(), "nope").is_err());
    }

    #[test]
    fn repeats_keep_the_latest_time() {
        let mut b = Builder::default();
        b.add("s1", "a", 5);
        b.add("s1", "b", 6);
        b.add("s1", "a", 9);
        let d = b.finish("t");
        assert_eq!(d.interactions, vec![(0, 0, 9), (0, 1, 6)]);
    }
}
