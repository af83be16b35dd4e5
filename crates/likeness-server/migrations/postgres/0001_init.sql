-- The same schema as migrations/sqlite, in PostgreSQL's types. See there for what each
-- table holds; nothing here is readable without the group's key.
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    label       TEXT NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX devices_group ON devices(group_id);

CREATE TABLE invites (
    code_hash   BYTEA PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX invites_group ON invites(group_id);

CREATE TABLE collections (
    group_id      TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    tag           TEXT NOT NULL,
    key_check     BYTEA NOT NULL,
    snapshot      BYTEA,
    snapshot_seq  BIGINT NOT NULL DEFAULT 0,
    next_seq      BIGINT NOT NULL DEFAULT 1,
    bytes         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, tag)
);

CREATE TABLE records (
    group_id  TEXT NOT NULL,
    tag       TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    push_id   BYTEA NOT NULL,
    body      BYTEA NOT NULL,
    PRIMARY KEY (group_id, tag, seq),
    UNIQUE (group_id, tag, push_id),
    FOREIGN KEY (group_id, tag) REFERENCES collections(group_id, tag) ON DELETE CASCADE
);
