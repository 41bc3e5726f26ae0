//! Per-user rate limits (GCRA, from `governor`): one budget for requests
//! and WebSocket messages, a larger one for location updates, and one per
//! client address for the unauthenticated auth routes.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::error::ApiError;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Requests,
    Locations,
    /// Register and login, keyed by client address.
    Auth,
    /// `POST /v1/ops/maintenance/check`: 10 a minute, for everyone together.
    MaintenanceCheck,
}

pub struct Limits {
    requests: DefaultKeyedRateLimiter<Arc<str>>,
    locations: DefaultKeyedRateLimiter<Arc<str>>,
    auth: DefaultKeyedRateLimiter<Arc<str>>,
    maintenance_check: DefaultKeyedRateLimiter<Arc<str>>,
    clock: DefaultClock,
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n).expect("validated: at least 1");
    // The whole minute's budget may be spent in a burst.
    Quota::per_minute(n).allow_burst(n)
}

impl Limits {
    pub fn new(cfg: &LimitsConfig) -> Limits {
        Limits {
            requests: RateLimiter::dashmap(per_minute(cfg.requests_per_minute)),
            locations: RateLimiter::dashmap(per_minute(cfg.locations_per_minute)),
            auth: RateLimiter::dashmap(per_minute(cfg.auth_per_minute)),
            maintenance_check: RateLimiter::dashmap(per_minute(10)),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one unit of `key`'s budget, or says how long to wait.
    pub fn check(&self, budget: Budget, key: &Arc<str>) -> Result<(), ApiError> {
        let limiter = match budget {
            Budget::Requests => &self.requests,
            Budget::Locations => &self.locations,
            Budget::Auth => &self.auth,
            Budget::MaintenanceCheck => &self.maintenance_check,
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited(wait.max(Duration::from_millis(1)))
        })
    }

    /// Forgets keys whose budget is full again, so idle users cost nothing.
    pub fn sweep(&self) {
        for l in [
            &self.requests,
            &self.locations,
            &self.auth,
            &self.maintenance_check,
        ] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out_and_names_a_wait() {
        let l = Limits::new(&LimitsConfig {
            requests_per_minute: 3,
            locations_per_minute: 5,
            auth_per_minute: 1,
            max_body_bytes: 1024,
        });
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        for _ in 0..3 {
            l.check(Budget::Requests, &a).unwrap();
        }
        let e = l.check(Budget::Requests, &a).unwrap_err();
        assert_eq!(e.code(), "rate_limited");
        let s = e.retry_after_s().unwrap();
        assert!((1..=20).contains(&s), "{s}");
        // Other users and the location budget are separate.
        l.check(Budget::Requests, &b).unwrap();
        for _ in 0..5 {
            l.check(Budget::Locations, &a).unwrap();
        }
        assert!(l.check(Budget::Locations, &a).is_err());
    }
}
