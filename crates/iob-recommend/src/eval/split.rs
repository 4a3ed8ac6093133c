//! The two evaluation protocols' splits, and their files for peers:
//!
//! * **random 80/10/10 per person** (RecBole `RS [0.8,0.1,0.1]`, random order): each person's
//!   interactions are shuffled; valid and test get `⌊0.1·n⌋` each, then, as RecBole's
//!   `_calcu_split_ids` does, a part whose share is between 0 and 1 interaction gets one taken
//!   from train while train keeps more than one;
//! * **leave-last-out by time**: each person's last interaction is the test item, the one
//!   before it the validation item, the rest train (a person with two: train and test).
//!
//! Files: `train.tsv`, `valid.tsv`, `test.tsv` (`person\titem`, dense 0-based indices) and
//! `meta.json` (`{"users","items","dataset","protocol"}`), so another library trains and scores
//! on exactly the same data.

use std::io::Write;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::error::{RecommendError, Result};
use crate::eval::data::Dataset;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Per-person random 80/10/10, full ranking (RecBole's).
    Random811,
    /// Leave-last-out by time.
    LeaveLastOut,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Random811 => "random-80/10/10",
            Protocol::LeaveLastOut => "leave-last-out",
        }
    }
    pub fn slug(self) -> &'static str {
        match self {
            Protocol::Random811 => "random",
            Protocol::LeaveLastOut => "last",
        }
    }
}

/// One split: per person, sorted item lists.
#[derive(Debug, Clone)]
pub struct Split {
    pub n_users: usize,
    pub n_items: usize,
    /// `(person, item, time)` for training.
    pub train: Vec<(u32, u32, i64)>,
    pub valid: Vec<Vec<u32>>,
    pub test: Vec<Vec<u32>>,
}

/// RecBole's part sizes for `n` interactions and ratios 0.8/0.1/0.1.
pub fn recbole_counts(n: usize) -> [usize; 3] {
    let ratios = [0.8f64, 0.1, 0.1];
    let mut cnt = [0usize; 3];
    for i in 1..3 {
        cnt[i] = (ratios[i] * n as f64) as usize;
    }
    cnt[0] = n - cnt[1] - cnt[2];
    for i in 1..3 {
        // RecBole iterates i = 1..len: cnt[-i] is the last, then the middle part.
        let k = 3 - i;
        if cnt[0] <= 1 {
            break;
        }
        let share = ratios[k] * n as f64;
        if 0.0 < share && share < 1.0 {
            cnt[k] += 1;
            cnt[0] -= 1;
        }
    }
    cnt
}

pub fn split(d: &Dataset, protocol: Protocol, seed: u64) -> Split {
    let mut per: Vec<Vec<(u32, i64)>> = vec![Vec::new(); d.n_users];
    for &(u, i, t) in &d.interactions {
        per[u as usize].push((i, t));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut s = Split {
        n_users: d.n_users,
        n_items: d.n_items,
        train: Vec::with_capacity(d.interactions.len()),
        valid: vec![Vec::new(); d.n_users],
        test: vec![Vec::new(); d.n_users],
    };
    for (u, items) in per.iter_mut().enumerate() {
        let n = items.len();
        let (n_train, n_valid) = match protocol {
            Protocol::Random811 => {
                items.shuffle(&mut rng);
                let c = recbole_counts(n);
                (c[0], c[1])
            }
            Protocol::LeaveLastOut => {
                // Stable: equal times keep the dataset's order.
                items.sort_by_key(|&(_, t)| t);
                match n {
                    0 | 1 => (n, 0),
                    2 => (1, 0),
                    _ => (n - 2, 1),
                }
            }
        };
        for &(i, t) in &items[..n_train] {
            s.train.push((u as u32, i, t));
        }
        s.valid[u] = items[n_train..n_train + n_valid]
            .iter()
            .map(|p| p.0)
            .collect();
        s.test[u] = items[n_train + n_valid..].iter().map(|p| p.0).collect();
        s.valid[u].sort_unstable();
        s.test[u].sort_unstable();
    }
    s
}

impl Split {
    /// Writes the split's files into `dir` (created).
    pub fn write(&self, dir: &Path, dataset: &str, protocol: Protocol) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| RecommendError::io(format!("creating {}", dir.display()), e))?;
        let write = |name: &str, rows: &mut dyn Iterator<Item = (u32, u32)>| -> Result<()> {
            let path = dir.join(name);
            let f = std::fs::File::create(&path)
                .map_err(|e| RecommendError::io(format!("creating {}", path.display()), e))?;
            let mut w = std::io::BufWriter::new(f);
            for (u, i) in rows {
                writeln!(w, "{u}\t{i}").map_err(|e| RecommendError::io("writing a split", e))?;
            }
            w.flush()
                .map_err(|e| RecommendError::io("writing a split", e))
        };
        write("train.tsv", &mut self.train.iter().map(|&(u, i, _)| (u, i)))?;
        let per = |v: &Vec<Vec<u32>>| -> Vec<(u32, u32)> {
            v.iter()
                .enumerate()
                .flat_map(|(u, is)| is.iter().map(move |&i| (u as u32, i)))
                .collect()
        };
        write("valid.tsv", &mut per(&self.valid).into_iter())?;
        write("test.tsv", &mut per(&self.test).into_iter())?;
        let meta = serde_json::json!({
            "users": self.n_users, "items": self.n_items,
            "dataset": dataset, "protocol": protocol.name(),
        });
        std::fs::write(dir.join("meta.json"), meta.to_string())
            .map_err(|e| RecommendError::io("writing meta.json", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recbole_rule() {
        assert_eq!(recbole_counts(20), [16, 2, 2]);
        assert_eq!(recbole_counts(25), [21, 2, 2]);
        assert_eq!(recbole_counts(2), [1, 0, 1]);
        assert_eq!(recbole_counts(3), [1, 1, 1]);
        assert_eq!(recbole_counts(1), [1, 0, 0]);
    }

    #[test]
    fn leave_last_out_takes_the_latest() {
        let d = Dataset {
            name: "t".into(),
            n_users: 2,
            n_items: 4,
            interactions: vec![
                (0, 0, 3),
                (0, 1, 1),
                (0, 2, 2),
                (0, 3, 9),
                (1, 2, 1),
                (1, 3, 2),
            ],
        };
        let s = split(&d, Protocol::LeaveLastOut, 1);
        assert_eq!(s.test[0], vec![3]);
        assert_eq!(s.valid[0], vec![0]);
        assert_eq!(s.test[1], vec![3]);
        assert!(s.valid[1].is_empty());
        assert_eq!(s.train.len(), 3);
        let r = split(&d, Protocol::Random811, 1);
        assert_eq!(
            r.train.len() + r.valid.concat().len() + r.test.concat().len(),
            6
        );
    }
}
