//! iCalendar (RFC 5545) text for `GET /v1/schedules.ics`: content lines
//! folded at 75 octets, TEXT values escaped, local times with `TZID` and a
//! `VTIMEZONE` for each zone used, describing its offsets over the
//! calendar's window with explicit observances (from the tz database
//! bundled with `jiff`, the same one the schedules are computed with).
//!
//! Written here rather than with the `icalendar` crate: its builder cannot
//! make `VTIMEZONE` components (which `TZID` must refer to) and would add
//! `chrono` to the build; the tests read our output back with that
//! crate's parser.

use engine::Millis;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// A calendar being written.
pub struct Calendar {
    out: String,
}

/// One component's properties.
pub struct Component<'a> {
    cal: &'a mut Calendar,
    name: &'static str,
}

impl Calendar {
    pub fn new(name: &str) -> Calendar {
        let mut c = Calendar { out: String::new() };
        c.line("BEGIN:VCALENDAR");
        c.line("VERSION:2.0");
        c.line("PRODID:-//dispatchd//maintenance//EN");
        c.line("CALSCALE:GREGORIAN");
        c.line("METHOD:PUBLISH");
        c.prop("X-WR-CALNAME", &text(name));
        c
    }

    /// One content line, folded: no line longer than 75 octets, each
    /// continuation starting with a space, never inside a character.
    fn line(&mut self, l: &str) {
        let mut rest = l;
        let mut first = true;
        while !rest.is_empty() {
            let max = if first { 75 } else { 74 };
            let mut end = rest.len().min(max);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            if !first {
                self.out.push(' ');
            }
            self.out.push_str(&rest[..end]);
            self.out.push_str("\r\n");
            rest = &rest[end..];
            first = false;
        }
    }

    fn prop(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{value}"));
    }

    pub fn begin(&mut self, name: &'static str) -> Component<'_> {
        self.line(&format!("BEGIN:{name}"));
        Component { cal: self, name }
    }

    /// A `VTIMEZONE` for `tzid` over `[from, to]`: the offset in force at
    /// `from`, then every change until `to`.
    pub fn timezone(&mut self, tzid: &str, tz: &TimeZone, from: Millis, to: Millis) {
        let Ok(start) = Timestamp::from_millisecond(from.0) else {
            return;
        };
        let Ok(end) = Timestamp::from_millisecond(to.0) else {
            return;
        };
        let mut c = self.begin("VTIMEZONE");
        c.prop("TZID", tzid);
        let first = tz.to_offset_info(start);
        let mut before = first.offset();
        let kind = |dst: bool| if dst { "DAYLIGHT" } else { "STANDARD" };
        {
            let mut o = c.cal.begin(kind(first.dst().is_dst()));
            o.prop("DTSTART", &local_at(start, before));
            o.prop("TZOFFSETFROM", &offset(before));
            o.prop("TZOFFSETTO", &offset(before));
            o.prop("TZNAME", &text(first.abbreviation()));
            o.end();
        }
        for t in tz.following(start) {
            if t.timestamp() > end {
                break;
            }
            let mut o = c.cal.begin(kind(t.dst().is_dst()));
            // The local time the change happens at, on the clock before it.
            o.prop("DTSTART", &local_at(t.timestamp(), before));
            o.prop("TZOFFSETFROM", &offset(before));
            o.prop("TZOFFSETTO", &offset(t.offset()));
            o.prop("TZNAME", &text(t.abbreviation()));
            o.end();
            before = t.offset();
        }
        c.end();
    }

    pub fn finish(mut self) -> String {
        self.line("END:VCALENDAR");
        self.out
    }
}

impl Component<'_> {
    /// A property whose value is already in iCalendar form.
    pub fn prop(&mut self, name: &str, value: &str) {
        self.cal.prop(name, value);
    }

    /// A TEXT property (escaped).
    pub fn text(&mut self, name: &str, value: &str) {
        self.cal.prop(name, &text(value));
    }

    /// A date-time property: UTC, or local with `TZID` (whose
    /// `VTIMEZONE` the caller writes).
    pub fn time(&mut self, name: &str, at: Millis, tzid: Option<(&str, &TimeZone)>) {
        let Ok(ts) = Timestamp::from_millisecond(at.0) else {
            return;
        };
        match tzid {
            Some((id, tz)) => {
                let v = local_at(ts, tz.to_offset(ts));
                self.cal.line(&format!("{name};TZID={}:{v}", param(id)));
            }
            None => self.cal.prop(name, &utc(ts)),
        }
    }

    pub fn end(self) {
        let name = self.name;
        self.cal.line(&format!("END:{name}"));
    }
}

/// `YYYYMMDDTHHMMSSZ`.
pub fn utc(ts: Timestamp) -> String {
    ts.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The wall-clock time at `ts` under `off`, `YYYYMMDDTHHMMSS`.
fn local_at(ts: Timestamp, off: Offset) -> String {
    off.to_datetime(ts).strftime("%Y%m%dT%H%M%S").to_string()
}

/// `+HHMM` / `-HHMM` (seconds, where a zone has them, as `+HHMMSS`).
fn offset(o: Offset) -> String {
    let s = o.seconds();
    let sign = if s < 0 { '-' } else { '+' };
    let a = s.unsigned_abs();
    let (h, m, sec) = (a / 3600, (a / 60) % 60, a % 60);
    if sec == 0 {
        format!("{sign}{h:02}{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}{sec:02}")
    }
}

/// A TEXT value: backslash, semicolon, comma and newlines escaped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value: quoted when it holds `:`, `;` or `,` (an IANA name
/// never does; quotes themselves are not allowed and are dropped).
fn param(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([':', ';', ',']) {
        format!("\"{clean}\"")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_on_char_boundaries() {
        let mut c = Calendar::new("x");
        let mut e = c.begin("VEVENT");
        e.text("DESCRIPTION", &"é,".repeat(60));
        e.end();
        let s = c.finish();
        for l in s.split("\r\n") {
            assert!(l.len() <= 75, "{l:?}");
        }
        let unfolded = s.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("DESCRIPTION:{}", "é\\,".repeat(60))));
    }

    #[test]
    fn berlin_has_both_changes_in_a_year() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let from = Millis(
            "2027-01-01T00:00:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_millisecond(),
        );
        let to = Millis(from.0 + 365 * 86_400_000);
        let mut c = Calendar::new("x");
        c.timezone("Europe/Berlin", &tz, from, to);
        let s = c.finish();
        assert!(s.contains("TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200"));
        assert!(s.contains("TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100"));
        assert!(s.contains("DTSTART:20270328T020000"));
        assert!(s.contains("DTSTART:20271031T030000"));
    }
}
