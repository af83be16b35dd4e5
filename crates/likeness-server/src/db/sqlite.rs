//! SQLite: the embedded default. One file in WAL mode with `synchronous=FULL`; writes take the
//! lock at once (`BEGIN IMMEDIATE`), so transactions never deadlock on an upgrade.

use super::{
    check_quota, check_snapshot, fill_page, CollectionInfo, Counts, Database, DeviceAuth, DeviceInfo, NewDevice,
    PullPage,
};
use crate::error::{ApiError, ApiResult};
use likeness_sync::protocol::PushRecord;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// SQLite: a file (or `:memory:` for tests).
#[derive(Clone)]
pub struct Sqlite {
    pool: SqlitePool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Sqlite {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        SQLITE_MIGRATIONS.run(&pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        Ok(Sqlite { pool })
    }

    /// A write transaction that takes the write lock at once (no upgrade deadlocks).
    async fn write(&self) -> ApiResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Database for Sqlite {
    async fn create_group(&self, group_id: &str, key_id: &str, now: i64, first: NewDevice) -> ApiResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO groups (id, key_id, created_at) VALUES (?, ?, ?)")
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
        let row = sqlx::query("SELECT id, group_id, revoked_at FROM devices WHERE token_hash = ?")
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
        sqlx::query("INSERT INTO invites (code_hash, group_id, expires_at) VALUES (?, ?, ?)")
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
        let mut tx = self.write().await?;
        let group: Option<String> = sqlx::query_scalar(
            "UPDATE invites SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING group_id",
        )
        .bind(now)
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(group) = group else { return Ok(None) };
        insert_device(&mut tx, &group, &device, now).await?;
        let key_id: String =
            sqlx::query_scalar("SELECT key_id FROM groups WHERE id = ?").bind(&group).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some((group, key_id)))
    }

    async fn list_devices(&self, group_id: &str) -> ApiResult<Vec<DeviceInfo>> {
        let rows = sqlx::query(
            "SELECT id, label, created_at, revoked_at FROM devices WHERE group_id = ? ORDER BY created_at, id",
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
        let done = sqlx::query("UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE group_id = ? AND id = ?")
            .bind(now)
            .bind(group_id)
            .bind(device_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_collection(&self, group_id: &str, tag: &str, key_check: &[u8]) -> ApiResult<Vec<u8>> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO collections (group_id, tag, key_check) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(group_id)
            .bind(tag)
            .bind(key_check)
            .execute(&mut *tx)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM collections WHERE group_id = ? AND tag = ?")
            .bind(group_id)
            .bind(tag)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn collection(&self, group_id: &str, tag: &str) -> ApiResult<Option<CollectionInfo>> {
        let row = sqlx::query(
            "SELECT key_check, snapshot_seq, next_seq - 1, bytes FROM collections WHERE group_id = ? AND tag = ?",
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
        let mut tx = self.write().await?;
        let next: Option<i64> = sqlx::query_scalar("SELECT next_seq FROM collections WHERE group_id = ? AND tag = ?")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(mut next) = next else { return Err(ApiError::NotFound) };
        let mut sequences = Vec::with_capacity(records.len());
        let mut added = 0i64;
        for r in records {
            let seen: Option<i64> =
                sqlx::query_scalar("SELECT seq FROM records WHERE group_id = ? AND tag = ? AND push_id = ?")
                    .bind(group_id)
                    .bind(tag)
                    .bind(&r.push_id[..])
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(seq) = seen {
                sequences.push(seq as u64);
                continue;
            }
            sqlx::query("INSERT INTO records (group_id, tag, seq, push_id, body) VALUES (?, ?, ?, ?, ?)")
                .bind(group_id)
                .bind(tag)
                .bind(next)
                .bind(&r.push_id[..])
                .bind(&r.record)
                .execute(&mut *tx)
                .await?;
            sequences.push(next as u64);
            next += 1;
            added += r.record.len() as i64;
        }
        let used: i64 =
            sqlx::query_scalar("SELECT bytes FROM groups WHERE id = ?").bind(group_id).fetch_one(&mut *tx).await?;
        check_quota(used, added, quota_bytes)?;
        sqlx::query("UPDATE collections SET next_seq = ?, bytes = bytes + ? WHERE group_id = ? AND tag = ?")
            .bind(next)
            .bind(added)
            .bind(group_id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
        add_group_bytes(&mut tx, group_id, added).await?;
        tx.commit().await?;
        Ok(sequences)
    }

    async fn pull(&self, group_id: &str, tag: &str, after: i64, limit: i64, max_bytes: i64) -> ApiResult<PullPage> {
        let mut tx = self.pool.begin().await?;
        let info = sqlx::query("SELECT snapshot_seq, next_seq - 1 FROM collections WHERE group_id = ? AND tag = ?")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound)?;
        let rows = sqlx::query(
            "SELECT seq, body FROM records WHERE group_id = ? AND tag = ? AND seq > ? ORDER BY seq LIMIT ?",
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
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT snapshot_seq, next_seq - 1, COALESCE(LENGTH(snapshot), 0) FROM collections WHERE group_id = ? AND tag = ?")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound)?;
        let (old_seq, last, old_len): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        check_snapshot(covers, old_seq, last)?;
        let dropped: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM records WHERE group_id = ? AND tag = ? AND seq <= ?",
        )
        .bind(group_id)
        .bind(tag)
        .bind(covers)
        .fetch_one(&mut *tx)
        .await?;
        let delta = record.len() as i64 - old_len - dropped;
        let used: i64 =
            sqlx::query_scalar("SELECT bytes FROM groups WHERE id = ?").bind(group_id).fetch_one(&mut *tx).await?;
        check_quota(used, delta, quota_bytes)?;
        sqlx::query("DELETE FROM records WHERE group_id = ? AND tag = ? AND seq <= ?")
            .bind(group_id)
            .bind(tag)
            .bind(covers)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE collections SET snapshot = ?, snapshot_seq = ?, bytes = bytes + ? WHERE group_id = ? AND tag = ?",
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
        let row = sqlx::query("SELECT snapshot_seq, snapshot FROM collections WHERE group_id = ? AND tag = ?")
            .bind(group_id)
            .bind(tag)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(ApiError::NotFound)?;
        let snapshot: Option<Vec<u8>> = row.get(1);
        Ok(snapshot.map(|s| (row.get(0), s)))
    }

    async fn delete_collection(&self, group_id: &str, tag: &str) -> ApiResult<bool> {
        let mut tx = self.write().await?;
        let bytes: Option<i64> =
            sqlx::query_scalar("DELETE FROM collections WHERE group_id = ? AND tag = ? RETURNING bytes")
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
        sqlx::query("DELETE FROM groups WHERE id = ?").bind(group_id).execute(&self.pool).await?;
        Ok(())
    }

    async fn counts(&self) -> ApiResult<Counts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM groups), (SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL), \
             (SELECT COUNT(*) FROM collections), (SELECT COUNT(*) FROM records), (SELECT COALESCE(SUM(bytes), 0) FROM groups)",
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
}

/// Keep a group's byte count (what quotas read) in step with a change of `delta` bytes.
async fn add_group_bytes(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    group_id: &str,
    delta: i64,
) -> ApiResult<()> {
    sqlx::query("UPDATE groups SET bytes = bytes + ? WHERE id = ?")
        .bind(delta)
        .bind(group_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_device(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    group_id: &str,
    d: &NewDevice,
    now: i64,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO devices (id, group_id, label, token_hash, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&d.device_id)
        .bind(group_id)
        .bind(&d.label)
        .bind(&d.token_hash)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
