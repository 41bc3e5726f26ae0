//! Drives engine time: offer and search deadlines, periodic re-search of
//! waiting jobs, and housekeeping. Checks ten times a second, so a
//! revocation or re-offer happens within about 100 ms of its deadline.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::app::AppState;
use crate::wire::now;
use engine::Op;

const RESOLUTION: Duration = Duration::from_millis(100);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub async fn run(app: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(RESOLUTION);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let Some(core) = app.core_any() else { continue };
        // One node drives time: the only one, or a cluster's lease holder.
        if core.backend.drives_time() && core.engine.next_deadline().is_some_and(|d| d <= now()) {
            if let Err(e) = core.exec(&app, Op::Tick).await {
                tracing::warn!(error = ?e, "tick not applied");
            }
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            app.limits.sweep();
            last_sweep = Instant::now();
        }
    }
}
