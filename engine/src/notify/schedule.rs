//! When a failed delivery is tried again (API.md): about 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h after the failures, each
//! ±10 % jitter, then failed. A `Retry-After` from the receiver pushes the
//! next attempt later, never earlier.

use std::time::Duration;

/// Delays after the 1st, 2nd, … failed attempt.
pub const DELAYS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Attempts in all: the first and one per delay.
pub const MAX_ATTEMPTS: u32 = DELAYS.len() as u32 + 1;

/// Longest `Retry-After` honoured (a receiver cannot park a delivery for ever).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt after `failed` attempts have failed,
/// or `None` when that was the last. `jitter` in [-1, 1] scales the ±10 %;
/// `retry_after` is the receiver's wish.
pub fn next_delay(failed: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    next_delay_in(&DELAYS, failed, jitter, retry_after)
}

/// [`next_delay`] over another list of delays (a deployment's or a
/// test's; [`DELAYS`] is the contract's).
pub fn next_delay_in(
    delays: &[Duration],
    failed: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *delays.get(failed.checked_sub(1)? as usize)?;
    let j = jitter.clamp(-1.0, 1.0) * 0.1;
    let delay = base.mul_f64(1.0 + j);
    Some(match retry_after {
        Some(r) => delay.max(r.min(MAX_RETRY_AFTER)),
        None => delay,
    })
}

/// `Retry-After` as seconds (an HTTP date is not honoured: receivers that
/// matter send seconds, and a date needs a trusted clock on both sides).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Monotone without jitter, within ±10 % with it, and it stops.
        #[test]
        fn the_schedule_holds(failed in 0u32..20, jitter in -1.0f64..=1.0, ra in proptest::option::of(0u64..200_000)) {
            let d = next_delay(failed, jitter, ra.map(Duration::from_secs));
            if failed == 0 || failed >= MAX_ATTEMPTS {
                prop_assert!(d.is_none());
            } else {
                let d = d.unwrap();
                let base = DELAYS[failed as usize - 1].as_secs_f64();
                let floor = match ra {
                    Some(r) => (r as f64).min(MAX_RETRY_AFTER.as_secs_f64()),
                    None => 0.0,
                };
                prop_assert!(d.as_secs_f64() >= (base * 0.9).max(floor) - 1e-6);
                prop_assert!(d.as_secs_f64() <= (base * 1.1).max(floor) + 1e-6);
                if failed + 1 < MAX_ATTEMPTS {
                    let next = next_delay(failed + 1, 0.0, None).unwrap();
                    prop_assert!(next > next_delay(failed, 0.0, None).unwrap());
                }
            }
        }
    }

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
