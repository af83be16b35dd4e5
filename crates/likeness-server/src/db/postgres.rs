//! PostgreSQL: one database shared by any number of stateless server processes.
//!
//! Writes to a group serialise on its row (`SELECT ... FOR NO KEY UPDATE`, taken first by
//! every transaction that changes a group's bytes, so lock order is the same everywhere and
//! the quota check sees every concurrent push). Pulls read in one `REPEATABLE READ`
//! snapshot, so a page never mixes a log before a snapshot with a tail after it. Live
//! announcements go out with `pg_notify` and every process forwards what it hears on
//! [`CHANNEL`] to its own listeners.

use super::{
    check_quota, check_snapshot, fill_page, CollectionInfo, Counts, Database, DeviceAuth, DeviceInfo, NewDevice,
    PullPage,
};
use crate::error::{ApiError, ApiResult};
use crate::Live;
use likeness_sync::protocol::PushRecord;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres as Pg, Row, Transaction};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast;

/// The `LISTEN/NOTIFY` channel live announcements travel on.
pub const CHANNEL: &str = "likeness_records";

/// A PostgreSQL database (`postgres://...`).
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
}

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Postgres {
    /// Connect to and migrate the database at `url`. Several processes may do this at once:
    /// sqlx's migrator takes an advisory lock.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        POSTGRES_MIGRATIONS.run(&pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        Ok(Postgres { pool })
    }

    /// A transaction holding the group's row lock, or NotFound if there is no such group.
    async fn lock_group(&self, group_id: &str) -> ApiResult<(Transaction<'static, Pg>, i64)> {
        let mut tx = self.pool.begin().await?;
        let used: Option<i64> = sqlx::query_scalar("SELECT bytes FROM groups WHERE id = $1 FOR NO KEY UPDATE")
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
        let used = used.ok_or(ApiError::NotFound)?;
        Ok((tx, used))
    }
}

impl Database for Postgres {
    async fn create_group(&self, group_id: &str, key_id: &str, now: i64, first: NewDevice) -> ApiResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO groups (id, key_id, created_at) VALUES ($1, $2, $3)")
            .bind(group_id)
            .bind(key_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_device(&mut tx, group_id, &first, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn device_by_token(&self, token_hash: &[u8]) -> ApiResult<Option<DeviceAuth>> {
        let row = sqlx::query("SELECT id, group_id, revoked_at FROM devices WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| DeviceAuth {
            device_id: r.get(0),
            group_id: r.get(1),
            revoked: r.get::<Option<i64>, _>(2).is_some(),
        }))
    }

    async fn create_invite(&self, group_id: &str, code_hash: &[u8], expires_at: i64) -> ApiResult<()> {
        sqlx::query("INSERT INTO invites (code_hash, group_id, expires_at) VALUES ($1, $2, $3)")
            .bind(code_hash)
            .bind(group_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn redeem_invite(
        &self,
        code_hash: &[u8],
        now: i64,
        device: NewDevice,
    ) -> ApiResult<Option<(String, String)>> {
        let mut tx = self.pool.begin().await?;
        // The row lock an UPDATE takes makes the invite single-use under concurrency too.
        let group: Option<String> = sqlx::query_scalar(
            "UPDATE invites SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING group_id",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(group) = group else { return Ok(None) };
        insert_device(&mut tx, &group, &device, now).await?;
        let key_id: String =
            sqlx::query_scalar("SELECT key_id FROM groups WHERE id = $1").bind(&group).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((group, key_id)))
    }

    async fn list_devices(&self, group_id: &str) -> ApiResult<Vec<DeviceInfo>> {
        let rows = sqlx::query(
            "SELECT id, label, created_at, revoked_at FROM devices WHERE group_id = $1 ORDER BY created_at, id",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeviceInfo { device_id: r.get(0), label: r.get(1), created_at: r.get(2), revoked_at: r.get(3) })
            .collect())
    }

    async fn revoke_device(&self, group_id: &str, device_id: &str, now: i64) -> ApiResult<bool> {
        let done =
            sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE group_id = $2 AND id = $3")
                .bind(now)
                .bind(group_id)
                .bind(device_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_collection(&self, group_id: &str, tag: &str, key_check: &[u8]) -> ApiResult<Vec<u8>> {
        // Insert-or-read in one statement: a concurrent creator's key check wins or ours does.
        let stored: Option<Vec<u8>> = sqlx::query_scalar(
            "INSERT INTO collections (group_id, tag, key_check) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING key_check",
        )
        .bind(group_id)
        .bind(tag)
        .bind(key_check)
        .fetch_optional(&self.pool)
        .await?;
        match stored {
            Some(k) => Ok(k),
            None => Ok(sqlx::query_scalar("SELECT key_check FROM collections WHERE group_id = $1 AND tag = $2")
                .bind(group_id)
                .bind(tag)
                .fetch_one(&self.pool)
                .await?),
        }
    }

    async fn collection(&self, group_id: &str, tag: &str) -> ApiResult<Option<CollectionInfo>> {
        let row = sqlx::query(
            "SELECT key_check, snapshot_seq, next_seq - 1, bytes FROM collections WHERE group_id = $1 AND tag = $2",
        )
        .bind(group_id)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CollectionInfo {
            key_check: r.get(0),
            snapshot_seq: r.get(1),
            last_seq: r.get(2),
            bytes: r.get(3),
        }))
    }

    async fn push(&self, group_id: &str, tag: &str, records: &[PushRecord], quota_bytes: i64) -> ApiResult<Vec<u64>> {
        let (mut tx, used) = self.lock_group(group_id).await?;
        let next: Option<i64> = sqlx::query_scalar("SELECT next_seq FROM collections WHERE group_id = $1 AND tag = $2")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(mut next) = next else { return Err(ApiError::NotFound) };
        // Which push ids this collection has seen, in one round trip.
        let ids: Vec<&[u8]> = records.iter().map(|r| &r.push_id[..]).collect();
        let mut seen: HashMap<Vec<u8>, i64> =
            sqlx::query("SELECT push_id, seq FROM records WHERE group_id = $1 AND tag = $2 AND push_id = ANY($3)")
                .bind(group_id)
                .bind(tag)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let mut sequences = Vec::with_capacity(records.len());
        let (mut seqs, mut push_ids, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
        let mut added = 0i64;
        for r in records {
            if let Some(&seq) = seen.get(&r.push_id[..]) {
                sequences.push(seq as u64);
                continue;
            }
            // A push id repeated within this push keeps its first sequence too.
            seen.insert(r.push_id.to_vec(), next);
            seqs.push(next);
            push_ids.push(&r.push_id[..]);
            bodies.push(&r.record[..]);
            sequences.push(next as u64);
            next += 1;
            added += r.record.len() as i64;
        }
        check_quota(used, added, quota_bytes)?;
        if !seqs.is_empty() {
            sqlx::query(
                "INSERT INTO records (group_id, tag, seq, push_id, body) \
                 SELECT $1, $2, * FROM UNNEST($3::BIGINT[], $4::BYTEA[], $5::BYTEA[])",
            )
            .bind(group_id)
            .bind(tag)
            .bind(&seqs)
            .bind(&push_ids)
            .bind(&bodies)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE collections SET next_seq = $1, bytes = bytes + $2 WHERE group_id = $3 AND tag = $4")
                .bind(next)
                .bind(added)
                .bind(group_id)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            add_group_bytes(&mut tx, group_id, added).await?;
        }
        tx.commit().await?;
        Ok(sequences)
    }

    async fn pull(&self, group_id: &str, tag: &str, after: i64, limit: i64, max_bytes: i64) -> ApiResult<PullPage> {
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let info = sqlx::query("SELECT snapshot_seq, next_seq - 1 FROM collections WHERE group_id = $1 AND tag = $2")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound)?;
        let rows = sqlx::query(
            "SELECT seq, body FROM records WHERE group_id = $1 AND tag = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(group_id)
        .bind(tag)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let records = fill_page(rows.into_iter().map(|r| (r.get(0), r.get(1))), max_bytes);
        Ok(PullPage { records, snapshot_seq: info.get(0), last_seq: info.get(1) })
    }

    async fn put_snapshot(
        &self,
        group_id: &str,
        tag: &str,
        covers: i64,
        record: &[u8],
        quota_bytes: i64,
    ) -> ApiResult<()> {
        let (mut tx, used) = self.lock_group(group_id).await?;
        let row = sqlx::query(
            "SELECT snapshot_seq, next_seq - 1, COALESCE(OCTET_LENGTH(snapshot), 0)::BIGINT \
             FROM collections WHERE group_id = $1 AND tag = $2",
        )
        .bind(group_id)
        .bind(tag)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound)?;
        let (old_seq, last, old_len): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        check_snapshot(covers, old_seq, last)?;
        let dropped: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM records WHERE group_id = $1 AND tag = $2 AND seq <= $3 RETURNING body) \
             SELECT COALESCE(SUM(OCTET_LENGTH(body)), 0)::BIGINT FROM gone",
        )
        .bind(group_id)
        .bind(tag)
        .bind(covers)
        .fetch_one(&mut *tx)
        .await?;
        let delta = record.len() as i64 - old_len - dropped;
        // A refusal rolls back the delete with the transaction.
        check_quota(used, delta, quota_bytes)?;
        sqlx::query(
            "UPDATE collections SET snapshot = $1, snapshot_seq = $2, bytes = bytes + $3 WHERE group_id = $4 AND tag = $5",
        )
        .bind(record)
        .bind(covers)
        .bind(delta)
        .bind(group_id)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
        add_group_bytes(&mut tx, group_id, delta).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn snapshot(&self, group_id: &str, tag: &str) -> ApiResult<Option<(i64, Vec<u8>)>> {
        let row = sqlx::query("SELECT snapshot_seq, snapshot FROM collections WHERE group_id = $1 AND tag = $2")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(ApiError::NotFound)?;
        let snapshot: Option<Vec<u8>> = row.get(1);
        Ok(snapshot.map(|s| (row.get(0), s)))
    }

    async fn delete_collection(&self, group_id: &str, tag: &str) -> ApiResult<bool> {
        let (mut tx, _) = match self.lock_group(group_id).await {
            Ok(locked) => locked,
            Err(ApiError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let bytes: Option<i64> =
            sqlx::query_scalar("DELETE FROM collections WHERE group_id = $1 AND tag = $2 RETURNING bytes")
                .bind(group_id)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(b) = bytes {
            add_group_bytes(&mut tx, group_id, -b).await?;
        }
        tx.commit().await?;
        Ok(bytes.is_some())
    }

    async fn delete_group(&self, group_id: &str) -> ApiResult<()> {
        sqlx::query("DELETE FROM groups WHERE id = $1").bind(group_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn counts(&self) -> ApiResult<Counts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM groups), (SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL), \
             (SELECT COUNT(*) FROM collections), (SELECT COUNT(*) FROM records), \
             (SELECT COALESCE(SUM(bytes), 0)::BIGINT FROM groups)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            groups: row.get(0),
            devices: row.get(1),
            collections: row.get(2),
            records: row.get(3),
            bytes: row.get(4),
        })
    }

    async fn announce(&self, live: Live, local: &broadcast::Sender<Live>) {
        // Every process, this one included, hears it back through its listener.
        let payload = serde_json::to_string(&live).unwrap_or_default();
        let sent = sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(&payload).execute(&self.pool).await;
        if let Err(e) = sent {
            // The records are stored; listeners elsewhere catch up on their next pull.
            tracing::warn!(error = %e, "live announcement not sent; telling this process's listeners only");
            let _ = local.send(live);
        }
    }

    fn listen(&self, local: broadcast::Sender<Live>) {
        let pool = self.pool.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no Tokio runtime: live announcements from other processes will not arrive");
            return;
        };
        runtime.spawn(async move {
            loop {
                let e = forward(&pool, &local).await;
                tracing::warn!(error = %e, "live listener lost its connection; reconnecting");
                // Whatever was announced meanwhile is unknown here: everyone pulls.
                let _ = local.send(Live::Resync);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
}

/// Forward notifications on [`CHANNEL`] to `local` until the connection fails.
async fn forward(pool: &PgPool, local: &broadcast::Sender<Live>) -> sqlx::Error {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => return e,
    };
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    loop {
        // `try_recv` reports a lost connection (`None`) instead of reconnecting silently.
        let n = match listener.try_recv().await {
            Ok(Some(n)) => n,
            Ok(None) => return sqlx::Error::PoolClosed,
            Err(e) => return e,
        };
        match serde_json::from_str::<Live>(n.payload()) {
            Ok(live) => {
                let _ = local.send(live);
            }
            Err(e) => tracing::warn!(error = %e, "ignored a malformed live announcement"),
        }
    }
}

async fn add_group_bytes(tx: &mut Transaction<'static, Pg>, group_id: &str, delta: i64) -> ApiResult<()> {
    sqlx::query("UPDATE groups SET bytes = bytes + $1 WHERE id = $2")
        .bind(delta)
        .bind(group_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_device(tx: &mut Transaction<'static, Pg>, group_id: &str, d: &NewDevice, now: i64) -> ApiResult<()> {
    sqlx::query("INSERT INTO devices (id, group_id, label, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&d.device_id)
        .bind(group_id)
        .bind(&d.label)
        .bind(&d.token_hash)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
