//! Privacy of aggregates: k-suppression and Laplace noise, applied to every released count.
//!
//! * **k-suppression.** A group (funnel step cell, breakdown group, retention cohort or cell,
//!   trend point, path node) backed by fewer than `k` distinct persons is *suppressed*: its
//!   counts are released as `null` with `suppressed: true`, never silently dropped, and the
//!   result's [`DisclosureReport::suppressed_groups`] says how many there were. The check uses
//!   the true person count, before noise. A count of zero persons backs no group and is
//!   released (noised under ε like any count).
//! * **Laplace noise.** With `epsilon`, every released count gets noise drawn from
//!   Laplace(0, Δ/ε), is rounded to the nearest integer and clamped at 0. Δ (the L1 sensitivity:
//!   how much one person can change the whole released vector) is stated by each analysis and
//!   reported with ε in the result, so the ε is per query. Derived numbers (conversion rates)
//!   are computed from released counts (post-processing keeps the guarantee); distributions
//!   that are not counts (time-to-convert medians) are withheld under ε.
//! * The noise is seeded (`seed`): the same query with the same seed gives the same answer, so
//!   repeating it does not average the noise away. A caller that wants fresh noise passes a
//!   fresh seed and must account for the extra ε spent.
//!
//! Must never: release a count of a group below `k` persons, or noise with a scale below Δ/ε.

use serde::{Deserialize, Serialize};

use crate::AnalysisError;
use crate::rng::Rng;

/// How results are protected, as given by the caller (the lead's config decides the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// Minimum number of distinct persons behind a released group (`None`: no suppression).
    #[serde(default)]
    pub k: Option<u32>,
    /// Privacy budget of the query for Laplace noise (`None`: exact counts).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Seed of the noise.
    #[serde(default)]
    pub seed: u64,
}

/// What protection a result received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DisclosureReport {
    pub k: Option<u32>,
    pub epsilon: Option<f64>,
    /// L1 sensitivity Δ of the released counts (present when noise was added).
    pub sensitivity: Option<f64>,
    /// Laplace scale Δ/ε (present when noise was added).
    pub noise_scale: Option<f64>,
    /// Groups released as suppressed because fewer than k persons backed them.
    pub suppressed_groups: u64,
}

impl Disclosure {
    /// No protection: exact counts, nothing suppressed.
    pub fn none() -> Self {
        Disclosure::default()
    }

    /// Suppression only.
    pub fn k(k: u32) -> Self {
        Disclosure {
            k: Some(k),
            ..Default::default()
        }
    }

    /// Checks the parameters (`field` is the request path of the disclosure member).
    pub fn validate(&self, field: &str) -> Result<(), AnalysisError> {
        if let Some(e) = self.epsilon
            && !(e.is_finite() && e > 0.0)
        {
            return Err(AnalysisError::request(
                format!("{field}.epsilon"),
                format!("must be a positive finite number, got {e}"),
            ));
        }
        Ok(())
    }

    /// A releaser for an analysis whose released counts have L1 sensitivity `sensitivity`.
    pub fn releaser(&self, sensitivity: f64) -> Releaser {
        let scale = self.epsilon.map(|e| sensitivity / e);
        Releaser {
            k: self.k.unwrap_or(0) as u64,
            scale,
            rng: Rng::new(self.seed),
            report: DisclosureReport {
                k: self.k,
                epsilon: self.epsilon,
                sensitivity: scale.map(|_| sensitivity),
                noise_scale: scale,
                suppressed_groups: 0,
            },
        }
    }
}

/// Applies a [`Disclosure`] to the counts of one result.
pub struct Releaser {
    k: u64,
    scale: Option<f64>,
    rng: Rng,
    report: DisclosureReport,
}

impl Releaser {
    /// Whether a group of `persons` distinct persons may be released.
    pub fn visible(&self, persons: u64) -> bool {
        persons == 0 || persons >= self.k
    }

    /// Whether noise is added (time distributions are then withheld).
    pub fn noisy(&self) -> bool {
        self.scale.is_some()
    }

    /// Counts one suppressed group.
    pub fn suppressed(&mut self) {
        self.report.suppressed_groups += 1;
    }

    /// Releases `count` (noised when ε is set).
    pub fn count(&mut self, count: u64) -> u64 {
        match self.scale {
            None => count,
            Some(b) => (count as f64 + self.rng.laplace(b)).round().max(0.0) as u64,
        }
    }

    /// Releases `count` of a group of `persons` persons, or `None` (counted as suppressed).
    pub fn cell(&mut self, persons: u64, count: u64) -> Option<u64> {
        if self.visible(persons) {
            Some(self.count(count))
        } else {
            self.suppressed();
            None
        }
    }

    pub fn finish(self) -> DisclosureReport {
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_minus_one_is_suppressed_and_k_is_shown() {
        let mut r = Disclosure::k(5).releaser(1.0);
        assert_eq!(r.cell(4, 4), None);
        assert_eq!(r.cell(5, 5), Some(5));
        assert_eq!(r.cell(5, 9), Some(9), "events counted, persons decide");
        assert_eq!(r.cell(1, 1), None);
        assert_eq!(r.cell(0, 0), Some(0), "an empty cell backs nobody");
        assert_eq!(r.finish().suppressed_groups, 2);
    }

    #[test]
    fn laplace_noise_has_the_stated_scale() {
        // Δ = 3, ε = 0.5 → b = 6: mean |noise| = b, variance 2b².
        let d = Disclosure {
            k: None,
            epsilon: Some(0.5),
            seed: 7,
        };
        let mut r = d.releaser(3.0);
        let n = 200_000;
        let base = 1_000_000u64;
        let (mut abs, mut sq, mut sum) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let x = r.count(base) as f64 - base as f64;
            abs += x.abs();
            sq += x * x;
            sum += x;
        }
        let n = n as f64;
        assert!((abs / n - 6.0).abs() < 0.1, "mean |x| = {}", abs / n);
        assert!((sq / n / 72.0 - 1.0).abs() < 0.05, "var = {}", sq / n);
        assert!((sum / n).abs() < 0.1, "mean = {}", sum / n);
        let rep = r.finish();
        assert_eq!(rep.noise_scale, Some(6.0));
        assert_eq!(rep.sensitivity, Some(3.0));
    }

    #[test]
    fn noise_is_seeded_rounded_and_clamped() {
        let d = Disclosure {
            k: None,
            epsilon: Some(0.1),
            seed: 42,
        };
        let a: Vec<u64> = (0..100)
            .map({
                let mut r = d.releaser(1.0);
                move |_| r.count(0)
            })
            .collect();
        let b: Vec<u64> = (0..100)
            .map({
                let mut r = d.releaser(1.0);
                move |_| r.count(0)
            })
            .collect();
        assert_eq!(a, b, "same seed, same noise");
        assert!(a.contains(&0), "negative draws clamp to 0");
        assert!(a.iter().any(|&x| x > 0));
        let e = Disclosure {
            epsilon: Some(0.0),
            ..Default::default()
        }
        .validate("disclosure");
        assert!(e.unwrap_err().to_string().contains("disclosure.epsilon"));
    }
}
