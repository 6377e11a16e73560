//! Failed sign-ins counted per account and per client address in a sliding
//! window, so password guessing stays slow (the limits are per process; a
//! fleet multiplies them by its size, which is still far below guessing
//! speed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures an account may have in the window before sign-in is refused.
pub const ACCOUNT_FAILURES: usize = 5;
/// Failures one address may have in the window, over all accounts.
pub const ADDRESS_FAILURES: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bounds memory under a flood of distinct accounts or addresses.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Default)]
pub struct LoginLimiter {
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginLimiter {
    /// How long until `account` from `address` may try again, if it is
    /// locked out now.
    pub fn retry_after(&self, account: &str, address: Option<&str>) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.lock();
        let mut wait = None;
        for (key, limit) in keys(account, address) {
            if let Some(times) = failures.get_mut(&key) {
                prune(times, now);
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    let until = (oldest + WINDOW).saturating_duration_since(now);
                    wait = wait.max(Some(until.max(Duration::from_secs(1))));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, account: &str, address: Option<&str>) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
        }
        for (key, _) in keys(account, address) {
            let times = failures.entry(key).or_default();
            prune(times, now);
            times.push_back(now);
        }
    }

    /// A successful sign-in forgets the account's failures (not the
    /// address's: one right password must not reset a spray).
    pub fn record_success(&self, account: &str) {
        self.lock().remove(&account_key(account));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.to_lowercase())
}

fn keys(account: &str, address: Option<&str>) -> Vec<(String, usize)> {
    let mut keys = vec![(account_key(account), ACCOUNT_FAILURES)];
    if let Some(address) = address {
        keys.push((format!("address:{address}"), ADDRESS_FAILURES));
    }
    keys
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|first| now.duration_since(*first) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_locks_after_its_failures_and_success_unlocks_it() {
        let limiter = LoginLimiter::default();
        for _ in 0..ACCOUNT_FAILURES - 1 {
            limiter.record_failure("Ana@Example.org", Some("10.0.0.1"));
            assert_eq!(
                limiter.retry_after("ana@example.org", Some("10.0.0.1")),
                None
            );
        }
        limiter.record_failure("ana@example.org", Some("10.0.0.1"));
        let wait = limiter.retry_after("ana@example.org", Some("10.0.0.2"));
        assert!(wait.is_some_and(|wait| wait <= WINDOW && wait >= Duration::from_secs(1)));
        limiter.record_success("ana@example.org");
        assert_eq!(
            limiter.retry_after("ana@example.org", Some("10.0.0.2")),
            None
        );
    }

    #[test]
    fn an_address_locks_after_spraying_many_accounts() {
        let limiter = LoginLimiter::default();
        for n in 0..ADDRESS_FAILURES {
            limiter.record_failure(&format!("user{n}@example.org"), Some("10.0.0.9"));
        }
        assert!(
            limiter
                .retry_after("fresh@example.org", Some("10.0.0.9"))
                .is_some()
        );
        assert_eq!(
            limiter.retry_after("fresh@example.org", Some("10.0.0.8")),
            None
        );
    }
}
