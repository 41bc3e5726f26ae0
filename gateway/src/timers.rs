//! The one time driver (a single node, or a cluster's timer-lease holder):
//! offer and search deadlines, periodic re-search of waiting jobs, the
//! archive pass, and housekeeping (rate limiters, resume backlogs, metrics). Checks ten times a second, so a
//! revocation or re-offer happens within about 100 ms of its deadline.
//! Time comes from the application's clock ([`crate::clock`]): tests call
//! [`deadlines`] and [`archive`] after moving a manual clock.

use std::time::{Duration, Instant};

use engine::{Millis, Op};
use tokio::sync::watch;

use crate::app::AppState;

const RESOLUTION: Duration = Duration::from_millis(100);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often histogram samples are folded into their buckets (bounded memory
/// whether or not anyone scrapes `/metrics`).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// Ops watching the fleet hear of changed workers at most this often.
const FLEET_EVERY: Duration = Duration::from_secs(1);
/// How often finished jobs past their retention are moved to the archive.
const ARCHIVE_EVERY: Duration = Duration::from_secs(1);
/// Shortest time a finished job stays in memory, whatever `keep_finished_s`.
const MIN_KEEP_MS: i64 = 3_000;

pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(RESOLUTION);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = Instant::now();
    let mut last_archive = Instant::now();
    let mut last_upkeep = Instant::now();
    let mut last_fleet = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        deadlines(&app).await;
        if last_archive.elapsed() >= ARCHIVE_EVERY {
            last_archive = Instant::now();
            archive(&app).await;
            daily_check(&app).await;
            stock_check(&app).await;
        }
        if last_fleet.elapsed() >= FLEET_EVERY {
            last_fleet = Instant::now();
            if let Some(core) = app.core_any() {
                app.hub
                    .watch
                    .fleet_tick(&core.engine, app.clock.now(), &app.metrics);
            }
        }
        if last_upkeep.elapsed() >= UPKEEP_EVERY {
            app.metrics.upkeep();
            last_upkeep = Instant::now();
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            app.limits.sweep();
            app.hub.backlogs.sweep(app.clock.now().0);
            if let Some(log) = app.hub.resume_log.get() {
                if log.wants_compaction() {
                    let b = &app.hub.backlogs;
                    log.compact(b.floor(), (b.last_seq(), app.clock.now().0), &b.dump());
                }
            }
            last_sweep = Instant::now();
        }
    }
}

/// A `Tick` if this node drives time and a deadline has passed.
pub async fn deadlines(app: &AppState) {
    let Some(core) = app.core_any() else { return };
    let now = app.clock.now();
    if core.backend.drives_time() && core.engine.next_deadline().is_some_and(|d| d <= now) {
        if let Err(e) = core.exec(app, Op::Tick).await {
            tracing::warn!(error = ?e, "tick not applied");
        }
    }
}

/// The daily due/overdue check, at `[maintenance] check_at_utc`: run when
/// the latest such instant has passed and the last daily run was before it
/// (so a server that was down at that time runs it when it comes back;
/// the engine remembers the run, so a restart does not repeat it, and
/// alerts are never raised twice for the same occurrence anyway).
pub async fn daily_check(app: &AppState) -> bool {
    let Some(core) = app.core_any() else {
        return false;
    };
    if !core.backend.drives_time() {
        return false;
    }
    let now = app.clock.now();
    let due = last_check_instant(now, app.cfg.maintenance.check_minute());
    if core.engine.last_daily_check().is_some_and(|l| l >= due) {
        return false;
    }
    match crate::routes::maintenance::run_check(app, core, true).await {
        Ok(r) => {
            tracing::info!(
                checked = r.checked,
                due = r.due,
                overdue = r.overdue,
                alerts = r.alerts,
                "daily maintenance check"
            );
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "daily maintenance check failed");
            false
        }
    }
}

/// The periodic reorder check, every `[stock] check_every_s` (the engine
/// remembers the last run, so a restart does not move the schedule).
pub async fn stock_check(app: &AppState) -> bool {
    let Some(core) = app.core_any() else {
        return false;
    };
    if !core.backend.drives_time() {
        return false;
    }
    let now = app.clock.now();
    let every = app.cfg.stock.check_every_s;
    if core
        .engine
        .last_stock_check()
        .is_some_and(|l| now < l.plus_secs(every))
    {
        return false;
    }
    match crate::routes::stock::run_check(app, core).await {
        Ok(r) => {
            if r.created > 0 {
                tracing::info!(checked = r.checked, created = r.created, "reorder check");
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "reorder check failed");
            false
        }
    }
}

/// The latest instant at or before `now` that is `minute` minutes after a
/// UTC midnight.
fn last_check_instant(now: Millis, minute: u32) -> Millis {
    const DAY: i64 = 86_400_000;
    let today = now.0.div_euclid(DAY) * DAY + i64::from(minute) * 60_000;
    Millis(if now.0 >= today { today } else { today - DAY })
}

/// History leaves memory: jobs finished longer ago than `keep_finished_s`.
pub async fn archive(app: &AppState) -> usize {
    let Some(core) = app.core_any() else { return 0 };
    if !core.backend.drives_time() {
        return 0;
    }
    // At least a few seconds, so the publisher has pushed a job's last
    // update before the job leaves memory.
    let keep_ms = (app.cfg.storage.keep_finished_s as i64)
        .saturating_mul(1000)
        .max(MIN_KEEP_MS);
    let cutoff = Millis(app.clock.now().0.saturating_sub(keep_ms));
    match core.backend.archive_due(app, &core.engine, cutoff).await {
        Ok(n) => {
            if n > 0 {
                tracing::debug!(archived = n, "finished jobs archived");
            }
            n
        }
        Err(e) => {
            tracing::warn!(error = ?e, "archive pass failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_check_instant_is_the_latest_one_passed() {
        let day = 86_400_000;
        let six = 6 * 60;
        // 2027-01-02 05:59 UTC → the 1st at 06:00; 06:00 → the 2nd.
        let d2 = 18_629 * day;
        assert_eq!(
            last_check_instant(Millis(d2 + 6 * 3_600_000 - 60_000), six),
            Millis(d2 - day + 6 * 3_600_000)
        );
        assert_eq!(
            last_check_instant(Millis(d2 + 6 * 3_600_000), six),
            Millis(d2 + 6 * 3_600_000)
        );
    }
}
