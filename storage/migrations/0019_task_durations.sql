-- Reason: a running job shows the time it has left, and its task is looked up most often near its expected end
-- (docs/architecture.md, "Look-ups timed to the task"): both come from how long recent tasks of the same model
-- and resolution took, kept here so that a restart keeps them. Only the latest few of each kind are kept.

CREATE TABLE task_durations (
    -- One row per job: recording a job's duration twice (a repeated completion) changes nothing.
    job_id      TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    resolution  TEXT NOT NULL,
    -- From the submit to the first look-up that saw the task complete, in milliseconds.
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    finished_at BIGINT NOT NULL
);

-- Loading and trimming go by kind, newest first.
CREATE INDEX task_durations_by_kind ON task_durations (model, resolution, finished_at);
