//! Recurrence: when a maintenance schedule's occurrences fall. Calendar
//! arithmetic in the schedule's time zone with `jiff` (its bundled tz
//! database: no I/O): a month step keeps the day of the month, clamped
//! (Jan 31 → Feb 28/29 → Mar 31), a year step keeps Feb 29 where it exists,
//! and the local wall-clock time holds across DST changes. Occurrence `k`
//! is always computed from the start (`start + k × step`), never from the
//! previous one, so clamping never drifts (Mar 31 stays the 31st after Feb).

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::types::Millis;

/// Largest interval accepted (e.g. every 1 000 days).
pub const MAX_INTERVAL: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUnit {
    Day,
    Week,
    Month,
    Year,
}

impl StepUnit {
    pub fn parse(s: &str) -> Option<StepUnit> {
        Some(match s {
            "day" => StepUnit::Day,
            "week" => StepUnit::Week,
            "month" => StepUnit::Month,
            "year" => StepUnit::Year,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepUnit::Day => "day",
            StepUnit::Week => "week",
            StepUnit::Month => "month",
            StepUnit::Year => "year",
        }
    }
}

/// `every: {unit, interval}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Every {
    pub unit: StepUnit,
    pub interval: u32,
}

impl Every {
    /// `n` steps as a calendar span (`None` past jiff's range).
    fn span(self, n: u64) -> Option<Span> {
        let k = i64::try_from(n)
            .ok()?
            .checked_mul(i64::from(self.interval))?;
        match self.unit {
            StepUnit::Day => Span::new().try_days(k).ok(),
            StepUnit::Week => Span::new().try_weeks(k).ok(),
            StepUnit::Month => Span::new().try_months(k).ok(),
            StepUnit::Year => Span::new().try_years(k).ok(),
        }
    }

    /// Roughly how long one step is, ms (for a first guess only).
    fn approx_ms(self) -> i64 {
        let day = 86_400_000i64;
        i64::from(self.interval)
            * match self.unit {
                StepUnit::Day => day,
                StepUnit::Week => 7 * day,
                StepUnit::Month => 30 * day + day / 2,
                StepUnit::Year => 365 * day + day / 4,
            }
    }
}

/// A validated rule: its zone resolved.
#[derive(Debug, Clone)]
pub struct Rule {
    pub every: Every,
    tz: TimeZone,
    start: Zoned,
}

/// The IANA zone named `name` (bundled database).
pub fn zone(name: &str) -> Result<TimeZone, EngineError> {
    if name.is_empty() || name.len() > 64 {
        return Err(EngineError::InvalidInput {
            field: "timezone",
            reason: "must be an IANA time zone name",
        });
    }
    TimeZone::get(name).map_err(|_| EngineError::InvalidInput {
        field: "timezone",
        reason: "must be an IANA time zone name",
    })
}

/// The IANA name of the zone `name` names, in its canonical spelling
/// (`europe/berlin` → `Europe/Berlin`; API.md v1.2).
pub fn canonical_zone(name: &str) -> Result<String, EngineError> {
    zone(name)?;
    if name == "UTC" {
        return Ok(name.to_owned());
    }
    Ok(jiff::tz::db()
        .available()
        .find(|z| z.as_str().eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |z| z.as_str().to_owned()))
}

fn ts(m: Millis) -> Result<Timestamp, EngineError> {
    Timestamp::from_millisecond(m.0).map_err(|_| EngineError::InvalidInput {
        field: "start_at",
        reason: "out of range",
    })
}

fn millis(z: &Zoned) -> Millis {
    Millis(z.timestamp().as_millisecond())
}

impl Rule {
    pub fn new(every: Every, timezone: &str, start_at: Millis) -> Result<Rule, EngineError> {
        if every.interval == 0 || every.interval > MAX_INTERVAL {
            return Err(EngineError::InvalidInput {
                field: "every.interval",
                reason: "must be 1 to 1000",
            });
        }
        let tz = zone(timezone)?;
        let start = ts(start_at)?.to_zoned(tz.clone());
        Ok(Rule { every, tz, start })
    }

    /// Occurrence `k` (0: the start).
    pub fn occurrence(&self, k: u64) -> Option<Millis> {
        let span = self.every.span(k)?;
        self.start.checked_add(span).ok().map(|z| millis(&z))
    }

    /// The first occurrence strictly after `t`, and its index.
    pub fn next_after(&self, t: Millis) -> Option<(u64, Millis)> {
        let start = millis(&self.start);
        if t < start {
            return Some((0, start));
        }
        // A guess from the average step, then walk to the exact one.
        let mut k = ((t.0 - start.0) / self.every.approx_ms()).max(0) as u64;
        k = k.saturating_sub(2);
        loop {
            let at = self.occurrence(k)?;
            if at > t {
                // Step back while the previous one is also after `t`.
                while k > 0 && self.occurrence(k - 1)? > t {
                    k -= 1;
                }
                return Some((k, self.occurrence(k)?));
            }
            k += 1;
        }
    }

    /// One step after `t` in local time (an `anchor: "completion"` roll).
    pub fn step_from(&self, t: Millis) -> Option<Millis> {
        let z = Timestamp::from_millisecond(t.0)
            .ok()?
            .to_zoned(self.tz.clone());
        z.checked_add(self.every.span(1)?).ok().map(|z| millis(&z))
    }

    /// Occurrences in `[from, to)`, at most `limit`, with their indexes.
    pub fn between(&self, from: Millis, to: Millis, limit: usize) -> Vec<(u64, Millis)> {
        let mut out = Vec::new();
        let Some((mut k, mut at)) = self.next_after(Millis(from.0 - 1)) else {
            return out;
        };
        while at < to && out.len() < limit {
            out.push((k, at));
            k += 1;
            match self.occurrence(k) {
                Some(a) => at = a,
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> Millis {
        Millis(s.parse::<Timestamp>().unwrap().as_millisecond())
    }

    fn local(m: Millis, tz: &str) -> String {
        Timestamp::from_millisecond(m.0)
            .unwrap()
            .to_zoned(TimeZone::get(tz).unwrap())
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    }

    fn every(unit: StepUnit, interval: u32) -> Every {
        Every { unit, interval }
    }

    #[test]
    fn zone_names_are_stored_canonical() {
        assert_eq!(canonical_zone("europe/berlin").unwrap(), "Europe/Berlin");
        assert_eq!(
            canonical_zone("AMERICA/NEW_YORK").unwrap(),
            "America/New_York"
        );
        assert_eq!(canonical_zone("UTC").unwrap(), "UTC");
        assert!(canonical_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn monthly_on_the_31st_clamps_without_drift() {
        let r = Rule::new(every(StepUnit::Month, 1), "UTC", at("2027-01-31T10:00:00Z")).unwrap();
        let days: Vec<String> = (0..4)
            .map(|k| local(r.occurrence(k).unwrap(), "UTC"))
            .collect();
        assert_eq!(
            days,
            [
                "2027-01-31 10:00",
                "2027-02-28 10:00",
                "2027-03-31 10:00",
                "2027-04-30 10:00"
            ]
        );
        let leap = Rule::new(every(StepUnit::Month, 1), "UTC", at("2028-01-31T10:00:00Z")).unwrap();
        assert_eq!(
            local(leap.occurrence(1).unwrap(), "UTC"),
            "2028-02-29 10:00"
        );
    }

    #[test]
    fn quarterly_is_three_months_not_91_days() {
        let r = Rule::new(every(StepUnit::Month, 3), "UTC", at("2027-01-15T08:00:00Z")).unwrap();
        let days: Vec<String> = (0..4)
            .map(|k| local(r.occurrence(k).unwrap(), "UTC"))
            .collect();
        assert_eq!(
            days,
            [
                "2027-01-15 08:00",
                "2027-04-15 08:00",
                "2027-07-15 08:00",
                "2027-10-15 08:00"
            ]
        );
    }

    #[test]
    fn weekly_at_nine_in_berlin_across_both_dst_changes() {
        // 2027: summer time from Mar 28, winter time from Oct 31.
        let r = Rule::new(
            every(StepUnit::Week, 1),
            "Europe/Berlin",
            at("2027-03-22T08:00:00Z"),
        )
        .unwrap();
        for k in 0..40 {
            assert_eq!(
                &local(r.occurrence(k).unwrap(), "Europe/Berlin")[11..],
                "09:00",
                "week {k}"
            );
        }
        let utc: Vec<String> = (0..2)
            .map(|k| local(r.occurrence(k).unwrap(), "UTC"))
            .collect();
        assert_eq!(utc, ["2027-03-22 08:00", "2027-03-29 07:00"]);
        let oct = r.next_after(at("2027-10-27T00:00:00Z")).unwrap().1;
        assert_eq!(local(oct, "UTC"), "2027-11-01 08:00");
    }

    #[test]
    fn yearly_on_feb_29() {
        let r = Rule::new(every(StepUnit::Year, 1), "UTC", at("2028-02-29T12:00:00Z")).unwrap();
        let days: Vec<String> = (0..5)
            .map(|k| local(r.occurrence(k).unwrap(), "UTC"))
            .collect();
        assert_eq!(
            days,
            [
                "2028-02-29 12:00",
                "2029-02-28 12:00",
                "2030-02-28 12:00",
                "2031-02-28 12:00",
                "2032-02-29 12:00"
            ]
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        let e = Rule::new(every(StepUnit::Day, 0), "UTC", Millis(0)).unwrap_err();
        assert!(matches!(
            e,
            EngineError::InvalidInput {
                field: "every.interval",
                ..
            }
        ));
        let e = Rule::new(every(StepUnit::Day, 1), "Mars/Olympus", Millis(0)).unwrap_err();
        assert!(matches!(
            e,
            EngineError::InvalidInput {
                field: "timezone",
                ..
            }
        ));
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Sao_Paulo",
    ];

    proptest! {
        /// Against an independent computation: each occurrence is the
        /// start's local date moved by k steps (day clamped to the month),
        /// at the start's wall-clock time (or the next valid one in a DST
        /// gap); strictly increasing; `next_after` finds exactly the first
        /// one after any instant.
        #[test]
        fn occurrences_follow_the_calendar(
            unit in prop_oneof![Just(StepUnit::Day), Just(StepUnit::Week), Just(StepUnit::Month), Just(StepUnit::Year)],
            interval in 1u32..14,
            zone_i in 0usize..ZONES.len(),
            start_s in 1_600_000_000i64..1_900_000_000,
            probe in 0i64..200_000_000,
        ) {
            let tz_name = ZONES[zone_i];
            let tz = TimeZone::get(tz_name).unwrap();
            let rule = Rule::new(Every { unit, interval }, tz_name, Millis(start_s * 1000)).unwrap();
            let start = Timestamp::from_second(start_s).unwrap().to_zoned(tz.clone());
            let (y0, m0, d0) = (i32::from(start.year()), i32::from(start.month()), i32::from(start.day()));
            let mut prev = None;
            for k in 0..24u64 {
                let got = rule.occurrence(k).unwrap();
                let z = Timestamp::from_millisecond(got.0).unwrap().to_zoned(tz.clone());
                let n = k as i32 * interval as i32;
                // The expected local date, computed by hand.
                let (ey, em, ed) = match unit {
                    StepUnit::Day | StepUnit::Week => {
                        let days = if unit == StepUnit::Day { n } else { 7 * n };
                        let d = start.date().checked_add(Span::new().days(days as i64)).unwrap();
                        (i32::from(d.year()), i32::from(d.month()), i32::from(d.day()))
                    }
                    StepUnit::Month | StepUnit::Year => {
                        let months = if unit == StepUnit::Month { n } else { 12 * n };
                        let total = y0 * 12 + (m0 - 1) + months;
                        let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
                        let last = jiff::civil::date(y as i16, m as i8, 1).days_in_month() as i32;
                        (y, m, d0.min(last))
                    }
                };
                prop_assert_eq!((i32::from(z.year()), i32::from(z.month()), i32::from(z.day())), (ey, em, ed), "k {}", k);
                // Wall clock kept unless it falls in a gap (then later, within 2 h).
                let want = start.time();
                if z.time() != want {
                    let diff = z.time().since(want).unwrap().total(jiff::Unit::Minute).unwrap();
                    prop_assert!(diff > 0.0 && diff <= 120.0, "k {} time {} want {}", k, z.time(), want);
                }
                if let Some(p) = prev { prop_assert!(got > p, "strictly increasing"); }
                prev = Some(got);
            }
            // next_after: the first occurrence after a probe instant.
            let t = Millis((start_s + probe) * 1000);
            let (k, a) = rule.next_after(t).unwrap();
            prop_assert!(a > t);
            prop_assert_eq!(rule.occurrence(k).unwrap(), a);
            if k > 0 { prop_assert!(rule.occurrence(k - 1).unwrap() <= t); }
        }
    }
}
