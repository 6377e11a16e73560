//! Per-sender send pacing: a token bucket for each sending number (or
//! messaging profile), because carriers throttle and filter per number
//! (10DLC throughput is assigned per number/campaign) rather than per account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Token buckets keyed by sender. Each key refills at `per_second` up to
/// `burst` tokens; keys never wait on each other.
#[derive(Debug)]
pub struct SendRateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: each waiter reserves its token up front, so waiters
    /// on one key are served in arrival order without polling.
    tokens: f64,
    updated: Instant,
}

impl SendRateLimiter {
    /// `per_second` is the sustained rate per key and `burst` how many sends
    /// an idle key may make at once. A `burst` of 0 is treated as 1 (nothing
    /// could ever be sent otherwise); a rate that is not a positive number is
    /// treated as the smallest positive rate, i.e. effectively "one burst,
    /// then stop", which fails safe for a misconfigured throttle.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second > 0.0 {
            per_second
        } else {
            f64::MIN_POSITIVE
        };
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until `key` may send one more message, then returns.
    ///
    /// The token is reserved when this is called, so dropping the future
    /// while it waits still spends it: cancellation only makes the limiter
    /// more conservative, never lets a burst through.
    pub async fn acquire(&self, key: &str) {
        let wait = self.reserve(key, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token for `key` and says how long to wait before using it.
    fn reserve(&self, key: &str, now: Instant) -> Duration {
        // A poisoned lock only means another task panicked mid-update of
        // plain numbers; the map is still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // Clamped so an absurdly small rate can't overflow Duration.
            let secs = (-bucket.tokens / self.per_second).min(1.0e9);
            Duration::from_secs_f64(secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_passes_at_once_then_sends_are_paced() {
        let limiter = SendRateLimiter::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire("+15550000001").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("+15550000001").await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        limiter.acquire("+15550000001").await;
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn one_key_waiting_does_not_hold_up_another() {
        let limiter = SendRateLimiter::new(1.0, 1);
        let start = Instant::now();
        limiter.acquire("a").await;
        limiter.acquire("b").await;
        assert_eq!(start.elapsed(), Duration::ZERO);

        let limiter = Arc::new(limiter);
        let waiting = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire("a").await })
        };
        tokio::task::yield_now().await;
        // "a" is now waiting a second; "c" must still go through at once.
        limiter.acquire("c").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        waiting.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_on_one_key_are_spaced_out() {
        let limiter = Arc::new(SendRateLimiter::new(10.0, 1));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let limiter = Arc::clone(&limiter);
            tasks.push(tokio::spawn(async move {
                limiter.acquire("k").await;
                start.elapsed()
            }));
        }
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await.unwrap());
        }
        done.sort();
        let expected: Vec<_> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(done, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_refills_no_more_than_the_burst() {
        let limiter = SendRateLimiter::new(1.0, 2);
        limiter.acquire("k").await;
        limiter.acquire("k").await;
        tokio::time::advance(Duration::from_secs(60)).await;
        let start = Instant::now();
        limiter.acquire("k").await;
        limiter.acquire("k").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire("k").await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_burst_still_lets_one_message_through() {
        let limiter = SendRateLimiter::new(1.0, 0);
        let start = Instant::now();
        limiter.acquire("k").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
