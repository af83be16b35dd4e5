//! `likeness sync ...`: this store's collections synced through a Likeness server, end-to-end
//! encrypted. The sync state (server, group, device token, group key, cursors) lives in
//! `sync.json` in the store directory, readable by its owner only. The group key is kept
//! there as its recovery phrase, or (`sync protect`) only wrapped under a passphrase, read
//! from `LIKENESS_SYNC_PASSPHRASE` or asked at the terminal whenever the key is needed.

use crate::collections_cmd::{open_engine, with_lock, Engine};
use crate::Failure;
use clap::Subcommand;
use likeness_collections::CollectionError;
use likeness_sync::client::{sync_group, GroupSync, Pulled, Transport};
use likeness_sync::protocol::decode_pull;
use likeness_sync::{passphrase, GroupKey, SyncError};
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
        /// Keep the key only wrapped under a passphrase (see `sync protect`).
        #[arg(long)]
        protect: bool,
    },
    /// A single-use join code for another device (contains the group key; share it privately),
    /// and the short code the joining device will show too.
    Invite,
    /// Join a group with a code from `sync invite`.
    Join {
        code: String,
        #[arg(long, default_value = "")]
        label: String,
        /// Keep the key only wrapped under a passphrase (see `sync protect`).
        #[arg(long)]
        protect: bool,
    },
    /// Pull, merge and push every collection of the group now.
    Now,
    /// Keep syncing: at once, after every local write to the store, whenever the server says
    /// another device pushed, and every `--interval` seconds. Prints one JSON line per sync
    /// (`Status`: `syncing`, `idle`, `offline` or `error`). Runs until interrupted, or until
    /// the server refuses this device (revoked: exit 3).
    Watch {
        #[arg(long, default_value_t = 60)]
        interval: u64,
    },
    /// The group, server and per-collection cursors.
    Status,
    /// The group's devices (this one marked).
    Devices,
    /// Which collections this store syncs: `--only a b` (just those), `--all` (every
    /// collection of the group, the default); with neither, show the setting.
    Collections {
        #[arg(long, num_args = 1.., conflicts_with = "all")]
        only: Vec<String>,
        #[arg(long)]
        all: bool,
    },
    /// Revoke a device of the group: its token stops working at once. (The group key is not
    /// rotated: a revoked device that kept a copy of it can still read what it already has.)
    Revoke { device_id: String },
    /// Keep the group key in `sync.json` only wrapped under a passphrase (Argon2id, 19 MiB, 2
    /// passes): every command that needs the key then reads it from `LIKENESS_SYNC_PASSPHRASE`
    /// or asks at the terminal. The passphrase comes from `LIKENESS_SYNC_PASSPHRASE` (the
    /// new one from `LIKENESS_SYNC_NEW_PASSPHRASE` when changing it) or is asked twice.
    Protect,
    /// Keep the group key as its recovery phrase again.
    Unprotect,
    /// Leave the group: revoke this device on the server (when reachable) and forget the
    /// group here. The collections stay in the store.
    Leave,
}

/// Where commands read the passphrase of a protected key.
pub const PASSPHRASE_ENV: &str = "LIKENESS_SYNC_PASSPHRASE";
/// Where `sync protect` reads the new passphrase when changing it.
pub const NEW_PASSPHRASE_ENV: &str = "LIKENESS_SYNC_NEW_PASSPHRASE";

/// What `sync.json` holds.
#[derive(Clone, Serialize, Deserialize)]
struct SyncConfig {
    server: String,
    group_id: String,
    device_id: String,
    token: String,
    /// The group key as its recovery phrase (absent when protected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group_key: Option<String>,
    /// The group key wrapped under a passphrase, in hex (`likeness_sync::passphrase`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_key: Option<String>,
    #[serde(default)]
    state: GroupSync,
}

impl SyncConfig {
    /// The group key: read from its phrase, or unwrapped with the passphrase.
    fn key(&self) -> Result<GroupKey, Failure> {
        match (&self.group_key, &self.wrapped_key) {
            (Some(phrase), _) => Ok(GroupKey::from_recovery_phrase(phrase)?),
            (None, Some(hex)) => {
                let wrapped = from_hex(hex)
                    .ok_or_else(|| SyncError::InvalidWrappedKey("sync.json's wrapped_key is not hex".into()))?;
                Ok(passphrase::unwrap(&wrapped, &read_passphrase(PASSPHRASE_ENV, "Passphrase: ", false)?)?)
            }
            (None, None) => Err(SyncError::InvalidWrappedKey("sync.json holds no group key".into()).into()),
        }
    }

    /// Keep `key` as its phrase, or wrapped under `passphrase`.
    fn keep(&mut self, key: &GroupKey, passphrase: Option<&str>) -> Result<(), Failure> {
        match passphrase {
            None => (self.group_key, self.wrapped_key) = (Some(key.recovery_phrase()), None),
            Some(p) => (self.group_key, self.wrapped_key) = (None, Some(to_hex(&passphrase::wrap(key, p)?))),
        }
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// A passphrase from the environment variable `env`, or typed at the terminal (twice when
/// `confirm`). Without either, the key stays locked.
fn read_passphrase(env: &str, prompt: &str, confirm: bool) -> Result<String, Failure> {
    use std::io::IsTerminal;
    let typed = match std::env::var(env) {
        Ok(p) => p,
        Err(_) if std::io::stdin().is_terminal() => {
            let ask = |prompt: &str| rpassword::prompt_password(prompt).map_err(|e| SyncError::Locked(e.to_string()));
            let p = ask(prompt)?;
            if confirm && ask("Again: ")? != p {
                return Err(CollectionError::InvalidParameter("the two passphrases differ".into()).into());
            }
            p
        }
        Err(_) => return Err(SyncError::Locked(format!("set {env} or run at a terminal")).into()),
    };
    if typed.is_empty() {
        return Err(CollectionError::InvalidParameter("the passphrase is empty".into()).into());
    }
    Ok(typed)
}

/// `--protect`: the new passphrase, asked before anything is sent.
fn new_passphrase(protect: bool) -> Result<Option<String>, Failure> {
    protect.then(|| read_passphrase(PASSPHRASE_ENV, "New passphrase: ", true)).transpose()
}

/// Load `sync.json`, change it and save it under the store lock, so a `sync watch` beside
/// this command never writes an older copy over the change.
fn update_config<T>(store: &Path, change: impl FnOnce(&mut SyncConfig) -> Result<T, Failure>) -> Result<T, Failure> {
    let mut engine = open_engine(store)?;
    let mut outcome = None;
    with_lock(&mut engine, |_| {
        let mut config = load(store)?;
        let r = change(&mut config);
        if r.is_ok() {
            save(store, &config)?;
        }
        outcome = Some(r);
        Ok(())
    })?;
    outcome.unwrap_or_else(|| Err(internal("the store lock ran nothing").into()))
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

    /// A JSON call (no body when `body` is `None`, as for a GET); the JSON answer.
    fn json_call(
        &self,
        method: &str,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, SyncError> {
        let (status, _, out) = self.send(method, url, body.map(|b| b.to_string().into_bytes()), true)?;
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
        SyncCommand::Create { server, label, protect } => {
            if config_path(store).exists() {
                return Err(
                    CollectionError::ResourceAlreadyExists("this store is already in a sync group".into()).into()
                );
            }
            let passphrase = new_passphrase(protect)?;
            let key = GroupKey::generate().map_err(sync_error)?;
            let http = Http::new(&server, "", "");
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/groups", http.base),
                    Some(serde_json::json!({ "key_id": key.id_hex(), "label": label })),
                )
                .map_err(sync_error)?;
            let mut config = SyncConfig {
                server: http.base.clone(),
                group_id: v["group_id"].as_str().unwrap_or_default().into(),
                device_id: v["device_id"].as_str().unwrap_or_default().into(),
                token: v["token"].as_str().unwrap_or_default().into(),
                group_key: None,
                wrapped_key: None,
                state: GroupSync::default(),
            };
            config.keep(&key, passphrase.as_deref())?;
            save(store, &config)?;
            Ok(serde_json::json!({
                "GroupId": config.group_id,
                "Server": config.server,
                "Protected": config.wrapped_key.is_some(),
                "RecoveryPhrase": key.recovery_phrase(),
                "Note": "Write the recovery phrase down: it is the only way back in if every device is lost. The server never sees it.",
            }))
        }
        SyncCommand::Invite => {
            let config = load(store)?;
            // Unlocked first: a wrong passphrase spends no invite.
            let key = config.key()?;
            let http = Http::new(&config.server, &config.group_id, &config.token);
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/groups/{}/invites", http.base, config.group_id),
                    Some(serde_json::json!({})),
                )
                .map_err(sync_error)?;
            let invite = v["invite"].as_str().unwrap_or_default();
            Ok(serde_json::json!({
                "JoinCode": join_code(&config.server, &config.group_id, invite, &key),
                "ShortCode": key.join_confirmation(&config.group_id, invite),
                "ExpiresAt": v["expires_at"],
            }))
        }
        SyncCommand::Join { code, label, protect } => {
            if config_path(store).exists() {
                return Err(
                    CollectionError::ResourceAlreadyExists("this store is already in a sync group".into()).into()
                );
            }
            let (server, group_id, invite, key) = parse_join_code(&code)?;
            let passphrase = new_passphrase(protect)?;
            let http = Http::new(&server, "", "");
            let v = http
                .json_call(
                    "POST",
                    &format!("{}/v1/join", http.base),
                    Some(serde_json::json!({ "invite": invite, "label": label })),
                )
                .map_err(sync_error)?;
            if v["group_id"].as_str() != Some(group_id.as_str()) || v["key_id"].as_str() != Some(key.id_hex().as_str())
            {
                return Err(sync_error(SyncError::WrongKey {
                    expected: v["key_id"].as_str().unwrap_or_default().into(),
                    found: key.id_hex(),
                }));
            }
            let mut config = SyncConfig {
                server: http.base.clone(),
                group_id,
                device_id: v["device_id"].as_str().unwrap_or_default().into(),
                token: v["token"].as_str().unwrap_or_default().into(),
                group_key: None,
                wrapped_key: None,
                state: GroupSync::default(),
            };
            config.keep(&key, passphrase.as_deref())?;
            save(store, &config)?;
            Ok(serde_json::json!({
                "GroupId": config.group_id,
                "DeviceId": config.device_id,
                "ShortCode": key.join_confirmation(&config.group_id, &invite),
            }))
        }
        SyncCommand::Now => sync_now(store),
        SyncCommand::Watch { interval } => watch(store, std::time::Duration::from_secs(interval.max(1))),
        SyncCommand::Devices => {
            let config = load(store)?;
            let http = Http::new(&config.server, &config.group_id, &config.token);
            let url = format!("{}/v1/groups/{}/devices", http.base, config.group_id);
            let mut v = http.json_call("GET", &url, None).map_err(sync_error)?;
            if let Some(list) = v["devices"].as_array_mut() {
                for d in list {
                    let this = d["device_id"].as_str() == Some(config.device_id.as_str());
                    d["this_device"] = this.into();
                }
            }
            Ok(serde_json::json!({ "Devices": v["devices"] }))
        }
        SyncCommand::Revoke { device_id } => {
            if device_id.is_empty() || !device_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(CollectionError::InvalidParameter(format!("{device_id:?} is not a device id")).into());
            }
            let config = load(store)?;
            let http = Http::new(&config.server, &config.group_id, &config.token);
            let url = format!("{}/v1/groups/{}/devices/{device_id}", http.base, config.group_id);
            let (status, _, body) = http.send("DELETE", &url, None, false).map_err(sync_error)?;
            if !(200..300).contains(&status) {
                if status == 404 {
                    return Err(
                        CollectionError::ResourceNotFound(format!("no device {device_id} in this group")).into()
                    );
                }
                return Err(sync_error(Http::refused(status, &body)));
            }
            Ok(serde_json::json!({ "Revoked": device_id }))
        }
        SyncCommand::Collections { only, all } => {
            for id in &only {
                likeness_collections::ids::check_collection_id(id)?;
            }
            let mut engine = open_engine(store)?;
            let state = with_lock(&mut engine, |_| {
                let mut config = load(store)?;
                if all {
                    config.state.only = None;
                } else if !only.is_empty() {
                    config.state.only = Some(only.into_iter().collect());
                }
                save(store, &config)?;
                Ok(config.state)
            })?;
            Ok(serde_json::json!({ "Only": state.only, "GroupCollections": state.directory.names }))
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
                "Protected": config.wrapped_key.is_some(),
                "Collections": cursors,
            }))
        }
        SyncCommand::Protect => update_config(store, |config| {
            let key = config.key()?;
            let env = if config.wrapped_key.is_some() { NEW_PASSPHRASE_ENV } else { PASSPHRASE_ENV };
            let passphrase = read_passphrase(env, "New passphrase: ", true)?;
            config.keep(&key, Some(&passphrase))?;
            Ok(serde_json::json!({ "Protected": true }))
        }),
        SyncCommand::Unprotect => update_config(store, |config| {
            let key = config.key()?;
            config.keep(&key, None)?;
            Ok(serde_json::json!({ "Protected": false }))
        }),
        SyncCommand::Leave => leave(store),
    }
}

/// `sync leave`: see [`SyncCommand::Leave`].
fn leave(store: &Path) -> Result<serde_json::Value, Failure> {
    let config = load(store)?;
    let http = Http::new(&config.server, &config.group_id, &config.token);
    let url = format!("{}/v1/groups/{}/devices/{}", http.base, config.group_id, config.device_id);
    // Unreachable, or already revoked: the group is forgotten here all the same.
    let revoked = match http.send("DELETE", &url, None, false) {
        Ok((status, _, _)) if (200..300).contains(&status) => true,
        Ok((401, _, _)) | Err(SyncError::Offline(_)) => false,
        Ok((status, _, body)) => return Err(sync_error(Http::refused(status, &body))),
        Err(e) => return Err(sync_error(e)),
    };
    let mut engine = open_engine(store)?;
    with_lock(&mut engine, |_| match std::fs::remove_file(config_path(store)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(internal(e)),
    })?;
    Ok(serde_json::json!({ "Left": config.group_id, "DeviceRevoked": revoked }))
}

/// One sync of every collection of the group, under the store lock (so `sync.json`'s state
/// and the collections move together even with a `sync watch` running beside it). The outer
/// error is the store's; the inner one the sync's.
fn run_sync(
    store: &Path,
    engine: &mut Engine,
    key: &GroupKey,
) -> Result<Result<serde_json::Value, SyncError>, CollectionError> {
    let mut names = Default::default();
    let result = with_lock(engine, |c| {
        let mut config = load(store)?;
        let http = Http::new(&config.server, &config.group_id, &config.token);
        let mut state = config.state.clone();
        let save_state = async |s: &GroupSync| {
            let snapshot = SyncConfig { state: s.clone(), ..config.clone() };
            save(store, &snapshot).map_err(|e| SyncError::Offline(e.message().to_string()))
        };
        let result =
            likeness_collections::block_on(sync_group(c, &http, key, &config.group_id, &mut state, save_state));
        config.state = state;
        save(store, &config)?;
        names = config.state.directory.names.clone();
        Ok(result)
    })?;
    Ok(result.map(|report| {
        serde_json::json!({
            "PulledRecords": report.pulled_records,
            "PulledSnapshot": report.pulled_snapshot,
            "PushedRecords": report.pushed_records,
            "WroteSnapshot": report.wrote_snapshot,
            "BytesDown": report.bytes_down,
            "BytesUp": report.bytes_up,
            "Collections": names,
        })
    }))
}

fn sync_now(store: &Path) -> Result<serde_json::Value, Failure> {
    let key = load(store)?.key()?;
    run_sync(store, &mut open_engine(store)?, &key)?.map_err(sync_error)
}

/// What wakes `sync watch`.
enum Wake {
    /// The server announced records (or asked everyone to resync).
    Server,
    /// The live stream is connected again after a break: something may have been missed.
    Reconnected,
    /// The server refused the stream's token: a sync will say why (a revoked device stops).
    Refused,
}

/// The store's write token: every write to the store changes it.
fn store_token(store: &Path) -> Option<Vec<u8>> {
    std::fs::read(store.join("token")).ok()
}

fn print_line(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Listen to the group's live events for ever, reconnecting with backoff; wakes go to `tx`.
fn listen(server: String, group_id: String, token: String, tx: std::sync::mpsc::Sender<Wake>) {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}/v1/groups/{group_id}/events", server.trim_end_matches('/'));
    let mut backoff = std::time::Duration::from_millis(500);
    let mut connected_before = false;
    loop {
        if let Ok(resp) = agent.get(&url).header("Authorization", format!("Bearer {token}")).call() {
            if resp.status() == 401 && tx.send(Wake::Refused).is_err() {
                return;
            }
            if resp.status() == 200 {
                backoff = std::time::Duration::from_millis(500);
                if connected_before && tx.send(Wake::Reconnected).is_err() {
                    return;
                }
                connected_before = true;
                for line in std::io::BufReader::new(resp.into_body().into_reader()).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("data:") && tx.send(Wake::Server).is_err() {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
    }
}

/// `sync watch`: see [`SyncCommand::Watch`].
fn watch(store: &Path, interval: std::time::Duration) -> Result<serde_json::Value, Failure> {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};
    let config = load(store)?;
    // Unlocked once, kept in memory while watching.
    let key = config.key()?;
    // Opened once; each sync refreshes it from the store under the lock.
    let mut engine = open_engine(store)?;
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (server, group, token) = (config.server.clone(), config.group_id.clone(), config.token.clone());
        std::thread::spawn(move || listen(server, group, token, tx));
    }
    // Local writes are noticed by polling the store's write token (cheap: one small file).
    let poll = Duration::from_millis(250);
    let mut synced_token = None;
    let mut next_periodic = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Duration::from_secs(1);
    let mut due = true;
    loop {
        let now = Instant::now();
        if now >= next_periodic || retry_at.is_some_and(|t| now >= t) {
            due = true;
        }
        if store_token(store) != synced_token {
            due = true;
        }
        if due && retry_at.is_none_or(|t| now >= t) {
            due = false;
            print_line(serde_json::json!({ "Status": "syncing" }));
            let started = Instant::now();
            match run_sync(store, &mut engine, &key)? {
                Ok(mut report) => {
                    report["Status"] = "idle".into();
                    report["Millis"] = (started.elapsed().as_millis() as u64).into();
                    print_line(report);
                    retry_at = None;
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    print_line(serde_json::json!({
                        "Status": if matches!(e, SyncError::Offline(_)) { "offline" } else { "error" },
                        "Code": e.exception_name(),
                        "Message": e.to_string(),
                    }));
                    // A revoked device stays revoked: retrying would only hammer the server.
                    if matches!(&e, SyncError::Server { code, .. } if code == "Unauthorized") {
                        return Err(sync_error(e));
                    }
                    retry_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
            synced_token = store_token(store);
            next_periodic = Instant::now() + interval;
        }
        match rx.recv_timeout(poll) {
            Ok(Wake::Server | Wake::Reconnected | Wake::Refused) => {
                // Several announcements at once make one sync.
                while rx.try_recv().is_ok() {}
                due = true;
                // The server is reachable again: no reason to keep waiting out a backoff.
                retry_at = None;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(internal("the live listener stopped").into()),
        }
    }
}
