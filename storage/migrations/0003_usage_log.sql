-- Reason: every job, successful or not, is in the usage log (docs/guarantees.md, "The usage log keeps every
-- job"); it is never purged.

CREATE TABLE usage_log (
    job_id          TEXT PRIMARY KEY,
    guild_id        BIGINT NOT NULL,
    channel_id      BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    prompt          TEXT NOT NULL,
    model           TEXT NOT NULL,
    size            TEXT NOT NULL,
    n               INTEGER NOT NULL,
    images          INTEGER NOT NULL DEFAULT 0,
    reference_count INTEGER NOT NULL DEFAULT 0,
    task_id         TEXT,
    status          TEXT NOT NULL,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);

-- Covering index: a guild's per-member and per-day summaries of a period read nothing but this index.
CREATE INDEX usage_log_by_guild ON usage_log (guild_id, created_at, user_id, images, status);
CREATE INDEX usage_log_by_member ON usage_log (guild_id, user_id, created_at);
CREATE INDEX usage_log_by_time ON usage_log (created_at);
