//! Time, injected: the application asks its [`Clock`] for `now`, so tests
//! drive offer and search deadlines, retention and token times by moving a
//! [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use engine::Millis;

pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        crate::wire::now()
    }
}

/// Time that moves only when told to.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Millis) -> ManualClock {
        ManualClock(AtomicI64::new(at.0))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::AcqRel);
    }

    pub fn set(&self, at: Millis) {
        self.0.store(at.0, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::Acquire))
    }
}
