//! Presence: which node holds a worker's socket, as a Redis key with a
//! TTL and as the `Connected` / `Disconnected` commands every node applies.

use super::*;

impl Cluster {
    /// A worker's socket opened here: presence key, then the command. (The
    /// caller orders one worker's connects and disconnects.)
    pub async fn connected(&self, w: &WorkerId) -> Result<(), ApiError> {
        self.local.insert(w.clone(), ());
        let mut con = self.con.clone();
        let _: () = con
            .pset_ex(presence_key(w.as_str()), &self.node, self.stale_ms)
            .await
            .map_err(redis_down)?;
        self.submit(Op::Connected {
            worker: w.clone(),
            node: self.node.clone(),
        })
        .await
        .map(|_| ())
        .map_err(ApiError::from)
    }

    /// …and closed (its last socket on this node).
    pub async fn disconnected(&self, w: &WorkerId) {
        self.local.remove(w);
        let mut con = self.con.clone();
        let script = redis::Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let _: redis::RedisResult<i64> = script
            .key(presence_key(w.as_str()))
            .arg(&self.node)
            .invoke_async(&mut con)
            .await;
        let _ = self
            .submit(Op::Disconnected {
                worker: w.clone(),
                node: self.node.clone(),
            })
            .await;
    }
}
