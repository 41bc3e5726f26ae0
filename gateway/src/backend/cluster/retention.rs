//! What the stream keeps. Every node publishes how far it has applied the
//! stream (a hash of node → "redis-time-ms id", refreshed each second and
//! during a join); the shared snapshot only ever moves forward; and the
//! stream is trimmed to the older of the snapshot and the slowest live node
//! — never past an entry a live or joining node has still to read.
//!
//! Before this, a node catching up from the shared snapshot (after a
//! restart, on a CPU-starved machine) could have the entries it had yet to
//! read trimmed away by the timer holder's next snapshot, and a node that
//! lost the timer lease could overwrite a newer snapshot with an older one
//! and trim past it: both left that node's engine silently behind the
//! others (the three-node crash loop's lost steps and double bookings,
//! BENCHMARKS.md). A trim past a node's position is also *detected*: the
//! reader reads the trim mark right after each read, and a node that finds
//! the stream trimmed past it stops being ready instead of diverging.

use super::*;

const APPLIED: &str = "dispatchd:applied";
const SNAP_ID: &str = "dispatchd:snap:id";
pub(super) const TRIMMED: &str = "dispatchd:trimmed";
/// A node whose position is older than this no longer holds the trim back
/// (it is dead; if it comes back, it finds the trim mark past it).
const APPLIED_TTL_MS: u64 = 30_000;

/// `KEYS[1]` applied hash; `ARGV[1]` node, `ARGV[2]` stream id.
const REPORT: &str = r"
local t = redis.call('TIME')
local ms = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ms .. ' ' .. ARGV[2])
return 1";

/// `KEYS`: snapshot, snapshot id, stream, applied hash, trim mark;
/// `ARGV`: id, snapshot bytes, ttl ms. Returns the id trimmed to, or
/// `false` when the stored snapshot is already as new (nothing written).
const SNAPSHOT: &str = r"
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a) or 0, tonumber(b) or 0
end
local function older(x, y)
  local xa, xb = parse(x)
  local ya, yb = parse(y)
  return xa < ya or (xa == ya and xb < yb)
end
local cur = redis.call('GET', KEYS[2])
if cur and not older(cur, ARGV[1]) then return false end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local trim = ARGV[1]
local all = redis.call('HGETALL', KEYS[4])
for i = 1, #all, 2 do
  local ms, id = string.match(all[i + 1], '^(%d+) (.+)$')
  if not ms or tonumber(ms) < now - tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[4], all[i])
  elseif older(id, trim) then
    trim = id
  end
end
local mark = redis.call('GET', KEYS[5])
if (not mark) or older(mark, trim) then
  redis.call('XTRIM', KEYS[3], 'MINID', trim)
  redis.call('SET', KEYS[5], trim)
end
return trim";

/// Registers a joining node at the stream's very start, before it reads
/// the snapshot: no trim passes it until it reports its real position.
pub(super) async fn report_joining(
    con: &mut ConnectionManager,
    node: &str,
) -> redis::RedisResult<()> {
    redis::Script::new(REPORT)
        .key(APPLIED)
        .arg(node)
        .arg("0-0")
        .invoke_async::<i64>(con)
        .await
        .map(|_| ())
}

impl Cluster {
    /// Publishes how far this node has applied the stream.
    pub(super) async fn report_applied(&self, id: &str) -> redis::RedisResult<()> {
        let mut con = self.con.clone();
        redis::Script::new(REPORT)
            .key(APPLIED)
            .arg(&self.node)
            .arg(id)
            .invoke_async::<i64>(&mut con)
            .await
            .map(|_| ())
    }

    /// Stops holding the trim back (a clean stop).
    pub(in crate::backend) async fn forget_applied(&self) {
        let mut con = self.con.clone();
        let _: redis::RedisResult<i64> = con.hdel(APPLIED, &self.node).await;
    }

    /// Writes the shared snapshot if it is newer than the stored one, and
    /// trims the stream as far as every live node allows. Returns the id
    /// trimmed to (`None`: a newer snapshot was there already).
    pub(super) async fn write_snapshot(
        &self,
        id: &str,
        bytes: Vec<u8>,
    ) -> redis::RedisResult<Option<String>> {
        let mut con = self.con.clone();
        redis::Script::new(SNAPSHOT)
            .key(SNAP)
            .key(SNAP_ID)
            .key(LOG)
            .key(APPLIED)
            .key(TRIMMED)
            .arg(id)
            .arg(bytes)
            .arg(APPLIED_TTL_MS)
            .invoke_async(&mut con)
            .await
    }

    /// Whether the stream was trimmed past `read_from` (entries after it
    /// may be gone). `mark` is the trim mark read right after the read.
    pub(super) fn trimmed_past(mark: Option<&str>, read_from: &str) -> bool {
        mark.is_some_and(|m| parse_id(m) > parse_id(read_from))
    }

    /// Marks this node not ready: it can no longer follow the stream.
    pub(super) fn lost_the_stream(&self, read_from: &str, mark: &str) {
        if !self.diverged.swap(true, Ordering::AcqRel) {
            tracing::error!(
                read_from,
                trimmed_to = mark,
                "the stream was trimmed past this node's position (it was away longer than \
                 the others waited); not ready — restart it to join from the shared snapshot"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_mark_compares_stream_ids_numerically() {
        assert!(!Cluster::trimmed_past(None, "5-0"));
        assert!(!Cluster::trimmed_past(Some("5-0"), "5-0"));
        assert!(!Cluster::trimmed_past(Some("5-0"), "10-0"));
        assert!(Cluster::trimmed_past(Some("10-0"), "9-3"));
        assert!(Cluster::trimmed_past(Some("9-4"), "9-3"));
    }
}
