//! `likeness sync ...`: this store's collections synced through a Likeness server, end-to-end
//! encrypted. The sync state (server, group, device token, group key, cursors) lives in
//! `sync.json` in the store directory, readable by its owner only.

use crate::collections_cmd::{open_engine, with_lock};
use crate::Failure;
use clap::Subcommand;
use likeness_collections::CollectionError;
use likeness_sync::client::{sync_group, GroupSync, Pulled, Transport};
use likeness_sync::protocol::decode_pull;
use likeness_sync::{GroupKey, SyncError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Create a sync group on a server; prints the recovery phrase (shown once).
    Create {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// A single-use join code for another device (contains the group key; share it privately).
    Invite,
    /// Join a group with a code from `sync invite`.
    Join {
        code: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Pull, merge and push every collection of the group now.
    Now,
    /// The group, server and per-collection cursors.
    Status,
}

/// What `sync.json` holds.
#[derive(Clone, Serialize, Deserialize)]
struct SyncConfig {
    server: String,
    group_id: String,
    device_id: String,
    token: String,
    /// The group key as its recovery phrase.
    group_key: String,
    #[serde(default)]
    state: GroupSync,
}

fn config_path(store: &Path) -> PathBuf {
    store.join("sync.json")
}

fn internal(e: impl std::fmt::Display) -> CollectionError {
    CollectionError::Internal(e.to_string())
}

fn sync_error(e: SyncError) -> Failure {
    Failure::from(e)
}

fn load(store: &Path) -> Result<SyncConfig, CollectionError> {
    let bytes = std::fs::read(config_path(store)).map_err(|_| {
        CollectionError::ResourceNotFound(
            "this store is not in a sync group: run `likeness sync create` or `sync join`".into(),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CollectionError::InvalidParameter(format!("sync.json is malformed: {e}")))
}

/// Write `sync.json` atomically (temp file, fsync, rename), owner-only.
fn save(store: &Path, config: &SyncConfig) -> Result<(), CollectionError> {
    std::fs::create_dir_all(store).map_err(internal)?;
    let tmp = store.join(format!("sync.json.tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(config).map_err(internal)?;
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(internal)?;
        f.write_all(&bytes).map_err(internal)?;
        f.sync_all().map_err(internal)?;
    }
    std::fs::rename(&tmp, config_path(store)).map_err(internal)
}

/// The server over HTTP (ureq; TLS with the webpki roots).
struct Http {
    base: String,
    group_id: String,
    token: String,
    agent: ureq::Agent,
}

impl Http {
    fn new(server: &str, group_id: &str, token: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build()
            .into();
        Http { base: server.trim_end_matches('/').to_string(), group_id: group_id.into(), token: token.into(), agent }
    }

    fn collection_url(&self, tag: &str) -> String {
        format!("{}/v1/groups/{}/collections/{tag}", self.base, self.group_id)
    }

    /// Send; (status, headers of interest, body). Network failures are Offline.
    fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<Vec<u8>>,
        json: bool,
    ) -> Result<(u16, Option<String>, Vec<u8>), SyncError> {
        let mut b = ureq::http::Request::builder().method(method).uri(url);
        if !self.token.is_empty() {
            b = b.header("Authorization", format!("Bearer {}", self.token));
        }
        if body.is_some() {
            b = b.header("Content-Type", if json { "application/json" } else { "application/octet-stream" });
        }
        let req = b.body(body.unwrap_or_default()).map_err(|e| SyncError::Offline(e.to_string()))?;
        let mut resp = self.agent.run(req).map_err(|e| SyncError::Offline(e.to_string()))?;
        let status = resp.status().as_u16();
        let header = resp
            .headers()
            .get("likeness-more")
            .or_else(|| resp.headers().get("likeness-snapshot-seq"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| SyncError::Offline(e.to_string()))?;
        Ok((status, header, body))
    }

    fn refused(status: u16, body: &[u8]) -> SyncError {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let code = v["code"].as_str().unwrap_or("HttpError").to_string();
        let message = v["message"].as_str().map_or_else(|| format!("HTTP {status}"), str::to_string);
        if code == "WrongKey" {
            return SyncError::WrongKey { expected: "this device's key".into(), found: "the server's".into() };
        }
        SyncError::Server { code, message }
    }

    fn json_call(&self, method: &str, url: &str, body: serde_json::Value) -> Result<serde_json::Value, SyncError> {
        let (status, _, out) = self.send(method, url, Some(body.to_string().into_bytes()), true)?;
        if !(200..300).contains(&status) {
            return Err(Self::refused(status, &out));
        }
        serde_json::from_slice(&out)
            .map_err(|e| SyncError::Server { code: "BadResponse".into(), message: e.to_string() })
    }
}

impl Transport for Http {
    async fn put_collection(&self, tag: &str, key_check: Vec<u8>) -> Result<(), SyncError> {
        let (status, _, out) = self.send("PUT", &self.collection_url(tag), Some(key_check), false)?;
        if status == 200 {
            Ok(())
        } else {
            Err(Self::refused(status, &out))
        }
    }

    async fn push(&self, tag: &str, body: Vec<u8>) -> Result<Vec<u64>, SyncError> {
        let (status, _, out) =
            self.send("POST", &format!("{}/records", self.collection_url(tag)), Some(body), false)?;
        if status != 200 {
            return Err(Self::refused(status, &out));
        }
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        Ok(v["sequences"].as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default())
    }

    async fn pull(&self, tag: &str, after: u64) -> Result<Pulled, SyncError> {
        let (status, more, out) =
            self.send("GET", &format!("{}/records?after={after}", self.collection_url(tag)), None, false)?;
        match status {
            200 => Ok(Pulled::Records { records: decode_pull(&out)?, more: more.as_deref() == Some("true") }),
            409 if serde_json::from_slice::<serde_json::Value>(&out).unwrap_or_default()["code"]
                == "SnapshotRequired" =>
            {
                Ok(Pulled::SnapshotRequired)
            }
            _ => Err(Self::refused(status, &out)),
        }
    }

    async fn get_snapshot(&self, tag: &str) -> Result<Option<(u64, Vec<u8>)>, SyncError> {
        let (status, seq, out) = self.send("GET", &format!("{}/snapshot", self.collection_url(tag)), None, false)?;
        match status {
            200 => Ok(Some((seq.and_then(|s| s.parse().ok()).unwrap_or(0), out))),
            404 => Ok(None),
            _ => Err(Self::refused(status, &out)),
        }
    }

    async fn put_snapshot(&self, tag: &str, covers: u64, record: Vec<u8>) -> Result<(), SyncError> {
        let url = format!("{}/snapshot?covers={covers}", self.collection_url(tag));
        let (status, _, out) = self.send("PUT", &url, Some(record), false)?;
        if status == 204 {
            Ok(())
        } else {
            Err(Self::refused(status, &out))
        }
    }
}

/// A join code: `<server>#<group id>.<invite>.<group key phrase>`. Everything after `#` is
/// for the joining device; only the invite is sent to the server.
fn join_code(server: &str, group_id: &str, invite: &str, key: &GroupKey) -> String {
    format!("{}#{group_id}.{invite}.{}", server.trim_end_matches('/'), key.recovery_phrase().replace('-', ""))
}

fn parse_join_code(code: &str) -> Result<(String, String, String, GroupKey), Failure> {
    let bad = || Failure::from(CollectionError::InvalidParameter("not a join code from `likeness sync invite`".into()));
    let (server, rest) = code.trim().split_once('#').ok_or_else(bad)?;
    let mut parts = rest.splitn(3, '.');
    let (group, invite, phrase) =
        (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let key = GroupKey::from_recovery_phrase(phrase).map_err(sync_error)?;
    Ok((server.to_string(), group.to_string(), invite.to_string(), key))
}

pub fn run(store: &Path, command: SyncCommand) -> Result<serde_json::Value, Failure> {
    match command {
        SyncCommand::Create { server, label } => {
            if config_path(store).exists() {
                return Err(
                    CollectionError::ResourceAlreadyExists("this store is already in a sync group".into()).into()
                );
            }
            let key = GroupKey::generate().map_err(sync_error)?;
            let http = Http::new(&server, "", "");
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/groups", http.base),
                    serde_json::json!({ "key_id": key.id_hex(), "label": label }),
                )
                .map_err(sync_error)?;
            let config = SyncConfig {
                server: http.base.clone(),
                group_id: v["group_id"].as_str().unwrap_or_default().into(),
                device_id: v["device_id"].as_str().unwrap_or_default().into(),
                token: v["token"].as_str().unwrap_or_default().into(),
                group_key: key.recovery_phrase(),
                state: GroupSync::default(),
            };
            save(store, &config)?;
            Ok(serde_json::json!({
                "GroupId": config.group_id,
                "Server": config.server,
                "RecoveryPhrase": config.group_key,
                "Note": "Write the recovery phrase down: it is the only way back in if every device is lost. The server never sees it.",
            }))
        }
        SyncCommand::Invite => {
            let config = load(store)?;
            let http = Http::new(&config.server, &config.group_id, &config.token);
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/groups/{}/invites", http.base, config.group_id),
                    serde_json::json!({}),
                )
                .map_err(sync_error)?;
            let key = GroupKey::from_recovery_phrase(&config.group_key).map_err(sync_error)?;
            Ok(serde_json::json!({
                "JoinCode": join_code(&config.server, &config.group_id, v["invite"].as_str().unwrap_or_default(), &key),
                "ExpiresAt": v["expires_at"],
            }))
        }
        SyncCommand::Join { code, label } => {
            if config_path(store).exists() {
                return Err(
                    CollectionError::ResourceAlreadyExists("this store is already in a sync group".into()).into()
                );
            }
            let (server, group_id, invite, key) = parse_join_code(&code)?;
            let http = Http::new(&server, "", "");
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/join", http.base),
                    serde_json::json!({ "invite": invite, "label": label }),
                )
                .map_err(sync_error)?;
            if v["group_id"].as_str() != Some(group_id.as_str()) || v["key_id"].as_str() != Some(key.id_hex().as_str())
            {
                return Err(sync_error(SyncError::WrongKey {
                    expected: v["key_id"].as_str().unwrap_or_default().into(),
                    found: key.id_hex(),
                }));
            }
            let config = SyncConfig {
                server: http.base.clone(),
                group_id,
                device_id: v["device_id"].as_str().unwrap_or_default().into(),
                token: v["token"].as_str().unwrap_or_default().into(),
                group_key: key.recovery_phrase(),
                state: GroupSync::default(),
            };
            save(store, &config)?;
            Ok(serde_json::json!({ "GroupId": config.group_id, "DeviceId": config.device_id }))
        }
        SyncCommand::Now => {
            let mut config = load(store)?;
            let key = GroupKey::from_recovery_phrase(&config.group_key).map_err(sync_error)?;
            let http = Http::new(&config.server, &config.group_id, &config.token);
            let mut engine = open_engine(store)?;
            let mut state = config.state.clone();
            let report = with_lock(&mut engine, |c| {
                let result =
                    likeness_collections::block_on(sync_group(c, &http, &key, &config.group_id, &mut state, |s| {
                        let snapshot = SyncConfig { state: s.clone(), ..config.clone() };
                        save(store, &snapshot).map_err(|e| SyncError::Offline(e.message().to_string()))
                    }));
                Ok(result)
            })?;
            config.state = state;
            save(store, &config)?;
            let report = report.map_err(sync_error)?;
            Ok(serde_json::json!({
                "PulledRecords": report.pulled_records,
                "PulledSnapshot": report.pulled_snapshot,
                "PushedRecords": report.pushed_records,
                "WroteSnapshot": report.wrote_snapshot,
                "BytesDown": report.bytes_down,
                "BytesUp": report.bytes_up,
                "Collections": config.state.directory.names,
            }))
        }
        SyncCommand::Status => {
            let config = load(store)?;
            let cursors: serde_json::Map<String, serde_json::Value> = config
                .state
                .collections
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!({ "Cursor": v.cursor, "Pending": v.pending.len() })))
                .collect();
            Ok(serde_json::json!({
                "GroupId": config.group_id,
                "Server": config.server,
                "DeviceId": config.device_id,
                "Collections": cursors,
            }))
        }
    }
}
