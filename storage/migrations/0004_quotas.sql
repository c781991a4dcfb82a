-- Reason: quota rules per server and a ledger of reserved images, the single truth that quotas count.

-- role_id is 0 for the server and member rules: one row per (guild, scope, role) and no NULL in the key.
CREATE TABLE quota_rules (
    guild_id     BIGINT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('server', 'member', 'role')),
    role_id      BIGINT NOT NULL DEFAULT 0,
    image_limit  INTEGER NOT NULL CHECK (image_limit >= 0),
    period       TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (guild_id, scope, role_id)
);

-- One row per job. images falls with refunds; reserved_at never changes, so a refund gives images back to
-- the period they were taken from. forgiven_at set: no longer counts for member and role rules (it still
-- counts for the server pool and the global cap).
CREATE TABLE quota_ledger (
    job_id          TEXT PRIMARY KEY,
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    images          INTEGER NOT NULL CHECK (images >= 0),
    reserved_images INTEGER NOT NULL CHECK (reserved_images >= images),
    reserved_at     BIGINT NOT NULL,
    forgiven_at     BIGINT
);

-- Covering indexes, one per kind of sum: server pool, member, global.
CREATE INDEX quota_ledger_by_guild ON quota_ledger (guild_id, reserved_at, images);
CREATE INDEX quota_ledger_by_member ON quota_ledger (guild_id, user_id, reserved_at, images, forgiven_at);
CREATE INDEX quota_ledger_by_time ON quota_ledger (reserved_at, images);
