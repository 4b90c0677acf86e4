//! A token bucket per API key, in this API node's memory: `per_minute` requests, refilled
//! evenly over the minute, with a burst of as many. A request beyond it is answered 429
//! with `Retry-After` (the seconds until the next token). Keys are the operator's, so the
//! map holds at most one bucket per configured key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        RateLimiter { per_minute: per_minute.max(1), buckets: Mutex::default() }
    }

    /// How many a minute this limiter allows.
    pub fn rate(&self) -> u32 {
        self.per_minute
    }

    /// Take a token of `key`'s bucket, or say how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket { tokens: capacity, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_token_every_sixtieth_of_a_minute() {
        let limiter = RateLimiter::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at("a", start).is_ok());
        }
        let wait = limiter.take_at("a", start).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.take_at("b", start).is_ok(), "each key its own bucket");
        assert!(limiter.take_at("a", start + Duration::from_secs(20)).is_ok());
        assert!(limiter.take_at("a", start + Duration::from_secs(21)).is_err());
        // Unused time fills the bucket up to its burst, no further.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.take_at("a", later).is_ok());
        }
        assert!(limiter.take_at("a", later).is_err());
    }
}
