-- Sync groups: one person's or one team's devices. The server knows a group only by a
-- random id and the public fingerprint of its key.
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0
);

-- Devices authenticate with a bearer token; only its SHA-256 is stored.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX devices_group ON devices(group_id);

-- Invites are single-use and expire; only the hash of the invite code is stored.
CREATE TABLE invites (
    code_hash   BLOB PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);

-- A collection is known by an opaque tag. `key_check` is a sealed record that a device
-- with the wrong key cannot open; `snapshot` covers the log up to `snapshot_seq`.
CREATE TABLE collections (
    group_id      TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    tag           TEXT NOT NULL,
    key_check     BLOB NOT NULL,
    snapshot      BLOB,
    snapshot_seq  INTEGER NOT NULL DEFAULT 0,
    next_seq      INTEGER NOT NULL DEFAULT 1,
    bytes         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, tag)
);

-- The append-only log of sealed records; `push_id` makes a retried push idempotent.
CREATE TABLE records (
    group_id  TEXT NOT NULL,
    tag       TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    push_id   BLOB NOT NULL,
    body      BLOB NOT NULL,
    PRIMARY KEY (group_id, tag, seq),
    UNIQUE (group_id, tag, push_id),
    FOREIGN KEY (group_id, tag) REFERENCES collections(group_id, tag) ON DELETE CASCADE
);
