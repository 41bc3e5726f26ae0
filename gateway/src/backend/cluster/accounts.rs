//! Accounts in Redis: one key per account and a `SET NX` email index (in
//! one script, so the unique-email check cannot race across nodes).

use super::*;

impl Cluster {
    pub async fn create_account(&self, a: &Account) -> Result<(), StoreError> {
        let script = redis::Script::new(
            r"if redis.call('SET', KEYS[1], ARGV[1], 'NX') then redis.call('SET', KEYS[2], ARGV[2]) return 1 end return 0",
        );
        let bytes = rmp_serde::to_vec_named(a).expect("accounts serialise");
        let mut con = self.con.clone();
        let ok: i64 = script
            .key(email_key(&a.email))
            .key(acct_key(&a.id))
            .arg(&a.id)
            .arg(bytes)
            .invoke_async(&mut con)
            .await
            .map_err(store_down)?;
        if ok == 1 {
            Ok(())
        } else {
            Err(StoreError::EmailTaken)
        }
    }

    /// Replaces an existing account (its email, and so the index, stays).
    pub async fn update_account(&self, a: &Account) -> Result<(), StoreError> {
        let bytes = rmp_serde::to_vec_named(a).expect("accounts serialise");
        let mut con = self.con.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(acct_key(&a.id))
            .arg(bytes)
            .arg("XX")
            .query_async(&mut con)
            .await
            .map_err(store_down)?;
        ok.map(|_| ()).ok_or(StoreError::Conflict)
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let mut con = self.con.clone();
        let bytes: Option<Vec<u8>> = con.get(acct_key(id)).await.map_err(store_down)?;
        bytes
            .map(|b| rmp_serde::from_slice(&b).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let mut con = self.con.clone();
        let id: Option<String> = con.get(email_key(email)).await.map_err(store_down)?;
        match id {
            Some(id) => self.account(&id).await,
            None => Ok(None),
        }
    }
}
