//! Per-key rate limits: one token bucket per API key id.
//!
//! Each request authenticated by a key takes one token from that key's bucket; the bucket
//! refills at `per_sec` tokens a second up to `burst`. A request finding the bucket empty is
//! refused with the time until the next token. Buckets exist only for keys that authenticated,
//! so memory is bounded by the number of keys. The caller passes the time (`Instant`), so the
//! limiter is deterministic in tests. It must never be keyed by a secret: ids only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `per_sec` requests a second on average, `burst` at once. `per_sec == 0` is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_sec: f64,
    pub burst: f64,
}

impl Limit {
    pub const OFF: Limit = Limit {
        per_sec: 0.0,
        burst: 0.0,
    };

    pub fn is_off(&self) -> bool {
        self.per_sec <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes a token for key `id` under `limit` at `now`; `Err(wait)` when there is none, with
    /// the time until there will be one.
    pub fn check(&self, id: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        if limit.is_off() {
            return Ok(());
        }
        let burst = limit.burst.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = match buckets.get_mut(id) {
            Some(b) => b,
            None => buckets.entry(id.to_string()).or_insert(Bucket {
                tokens: burst,
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * limit.per_sec).min(burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_sec))
        }
    }

    /// Forgets a key's bucket (after it is revoked).
    pub fn forget(&self, id: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_key() {
        let l = RateLimiter::default();
        let limit = Limit {
            per_sec: 10.0,
            burst: 3.0,
        };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", limit, t0).is_ok());
        }
        let wait = l.check("a", limit, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(l.check("b", limit, t0).is_ok(), "buckets are per key");
        assert!(l.check("a", limit, t0 + Duration::from_millis(100)).is_ok());
        assert!(
            l.check("a", limit, t0 + Duration::from_millis(100))
                .is_err()
        );
        // Long idle refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check("a", limit, later).is_ok());
        }
        assert!(l.check("a", limit, later).is_err());
        l.forget("a");
        assert!(
            l.check("a", limit, later).is_ok(),
            "a forgotten key starts full"
        );
    }

    #[test]
    fn off_never_limits() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(l.check("a", Limit::OFF, t0).is_ok());
        }
        assert!(l.buckets.lock().unwrap().is_empty());
    }
}
