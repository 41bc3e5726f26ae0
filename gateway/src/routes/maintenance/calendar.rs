//! `GET /v1/schedules.ics`: the calendar feed (RFC 5545, written by
//! `crate::ics`).

use super::*;

/// The calendar feed covers this far back (logs) and ahead (occurrences).
const FEED_DAYS: u64 = 90;
/// Most occurrences one schedule contributes to the feed.
const FEED_PER_SCHEDULE: usize = 100;
/// Most schedules and logs in one feed.
const FEED_SCHEDULES: usize = 5_000;
const FEED_LOGS: usize = 5_000;

/// `GET /v1/schedules.ics`: the caller's schedules' occurrences in the
/// next 90 days and their logs of the last 90, one `VEVENT` each.
pub async fn calendar(
    State(app): State<AppState>,
    CalendarUser(user): CalendarUser,
) -> Result<Response, ApiError> {
    let core = app.core()?;
    let now = app.clock.now();
    let from = now.minus_secs(FEED_DAYS * 86_400);
    let to = now.plus_secs(FEED_DAYS * 86_400);
    core.settled(&app).await?;
    let q = ScheduleQuery {
        viewer: viewer(&user),
        property_id: None,
        status: None,
        due_before: None,
        limit: FEED_SCHEDULES,
        now,
    };
    let schedules = core.engine.list_schedules(&q);
    let logs = if schedules.is_empty() {
        Vec::new()
    } else {
        let lq = LogQuery {
            schedules: Some(schedules.iter().map(|s| s.id.clone()).collect()),
            properties: None,
            from: Some(from),
            to: Some(now),
            limit: FEED_LOGS,
        };
        core.backend.logs(&lq).await?
    };
    let mut cal = crate::ics::Calendar::new("dispatchd maintenance");
    let mut zones: Vec<&str> = schedules
        .iter()
        .map(|s| s.timezone.as_str())
        .filter(|z| *z != "UTC")
        .collect();
    zones.sort_unstable();
    zones.dedup();
    let mut resolved = Vec::new();
    for z in zones {
        if let Ok(tz) = recurrence::zone(z) {
            cal.timezone(z, &tz, from.minus_secs(86_400), to.plus_secs(86_400));
            resolved.push((z, tz));
        }
    }
    let zone_of = |name: &str| {
        resolved
            .iter()
            .find(|(z, _)| *z == name)
            .map(|(z, tz)| (*z, tz))
    };
    let stamp = jiff::Timestamp::from_millisecond(now.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dtstamp = crate::ics::utc(stamp);
    let places: std::collections::HashMap<String, engine::Property> = schedules
        .iter()
        .filter_map(|s| core.engine.property(&s.property_id))
        .map(|p| (p.id.clone(), p))
        .collect();
    for s in &schedules {
        let tz = zone_of(&s.timezone);
        let place = places.get(&s.property_id);
        for at in occurrences(s, now, to) {
            let mut e = cal.begin("VEVENT");
            e.prop("UID", &format!("{}-{}@dispatchd", s.id, at.0));
            e.prop("DTSTAMP", &dtstamp);
            e.time("DTSTART", at, tz);
            e.prop("DURATION", "PT1H");
            e.text("SUMMARY", &s.title);
            let mut what = format!(
                "{} ({}), every {} {}",
                s.title,
                s.skill.as_str(),
                s.every.interval,
                s.every.unit.as_str()
            );
            if !s.description.is_empty() {
                what.push('\n');
                what.push_str(&s.description);
            }
            e.text("DESCRIPTION", &what);
            if let Some(p) = place {
                let mut loc = p.name.clone();
                if let Some(a) = &p.address {
                    loc.push_str(", ");
                    loc.push_str(a);
                }
                e.text("LOCATION", &loc);
                e.prop("GEO", &format!("{:.6};{:.6}", p.lat, p.lng));
            }
            // A list of values: the commas separate them (not TEXT).
            e.prop("CATEGORIES", "MAINTENANCE");
            e.prop("STATUS", "CONFIRMED");
            e.end();
        }
    }
    let titles: std::collections::HashMap<&str, &Schedule> =
        schedules.iter().map(|s| (s.id.as_str(), s)).collect();
    for l in &logs {
        let title = titles
            .get(l.schedule_id.as_str())
            .map_or("maintenance", |s| s.title.as_str());
        let mut e = cal.begin("VEVENT");
        e.prop("UID", &format!("{}@dispatchd", l.id));
        e.prop("DTSTAMP", &dtstamp);
        e.time("DTSTART", l.performed_at, None);
        e.prop("DURATION", "PT1H");
        e.text("SUMMARY", &format!("Done: {title}"));
        let mut what = format!("Issues found: {}", l.issues_found.as_str());
        if !l.notes.is_empty() {
            what.push('\n');
            what.push_str(&l.notes);
        }
        e.text("DESCRIPTION", &what);
        e.prop("CATEGORIES", "MAINTENANCE,DONE");
        e.prop("STATUS", "CONFIRMED");
        e.end();
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        cal.finish(),
    )
        .into_response())
}

/// A schedule's due dates from `next_due_at` up to `to` (none when
/// paused). An overdue schedule has one: its current due date (API.md
/// v1.2), not one per occurrence it missed.
fn occurrences(s: &Schedule, now: Millis, to: Millis) -> Vec<Millis> {
    let mut out = Vec::new();
    if s.paused {
        return out;
    }
    if s.next_due_at < now {
        out.push(s.next_due_at);
        return out;
    }
    let Ok(rule) = s.rule() else { return out };
    let mut at = s.next_due_at;
    while at < to && out.len() < FEED_PER_SCHEDULE {
        out.push(at);
        let next = match s.anchor {
            Anchor::Due => rule.next_after(at).map(|(_, n)| n),
            Anchor::Completion => rule.step_from(at),
        };
        match next {
            Some(n) if n > at => at = n,
            _ => break,
        }
    }
    out
}
