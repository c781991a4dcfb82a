-- Reason: jobs are stored at every step so that an accepted job is delivered or refunded across restarts.
-- Conventions for every migration: SQL that SQLite and PostgreSQL both accept (a NNNN_name.postgresql.sql
-- variant where that is impossible); instants (*_at) are BIGINT UTC milliseconds since the Unix epoch;
-- Discord ids are BIGINT; enumerations are TEXT holding the Python enum's value; flags are INTEGER 0 or 1
-- (the same values on both engines, so a copy between them converts nothing).

CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    guild_id          BIGINT NOT NULL,
    channel_id        BIGINT NOT NULL,
    user_id           BIGINT NOT NULL,
    kind              TEXT NOT NULL,
    parent_job_id     TEXT,
    prompt            TEXT NOT NULL,
    size              TEXT NOT NULL,
    n                 INTEGER NOT NULL CHECK (n >= 1),
    model             TEXT NOT NULL,
    reference_count   INTEGER NOT NULL DEFAULT 0 CHECK (reference_count >= 0),
    state             TEXT NOT NULL,
    task_id           TEXT,
    progress          INTEGER NOT NULL DEFAULT 0,
    submit_started_at BIGINT,
    result_files      TEXT NOT NULL DEFAULT '[]',
    images_delivered  INTEGER NOT NULL DEFAULT 0,
    error_code        TEXT,
    error_message     TEXT,
    late_notified     INTEGER NOT NULL DEFAULT 0 CHECK (late_notified IN (0, 1)),
    application_id    BIGINT,
    interaction_token TEXT,
    token_expires_at  BIGINT,
    reply_message_id  BIGINT,
    result_message_id BIGINT,
    delivered_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    finished_at       BIGINT
);

-- Resuming at start-up reads only the unfinished jobs: a partial index stays small however long the history.
CREATE INDEX jobs_unfinished ON jobs (created_at) WHERE state NOT IN ('completed', 'failed');
