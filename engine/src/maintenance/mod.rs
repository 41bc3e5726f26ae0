//! Maintenance programmes (API.md v1.1): recurring schedules at a property
//! that dispatch themselves. This first part is the calendar: when a
//! schedule's occurrences fall ([`recurrence`]). Schedules, logs and the
//! due/overdue check build on it.

pub mod recurrence;

pub use recurrence::{Every, Rule, StepUnit};
