-- Reason: every change of a job's state is kept with its time, to follow a job through the pipeline.
-- An INTEGER PRIMARY KEY numbers the events itself on SQLite; 0002_job_events.postgresql.sql says it there.

CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    from_state TEXT,
    state      TEXT NOT NULL,
    at         BIGINT NOT NULL
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);
