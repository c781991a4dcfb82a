-- Reason: reference images are kept (until RETENTION_DAYS) so that Re-roll can send them again.

-- Content-addressed: a re-roll links the same bytes instead of copying them. BYTEA is PostgreSQL's type for
-- bytes; SQLite takes any type name and keeps bytes as they are, so the one spelling serves both.
CREATE TABLE reference_blobs (
    sha256     TEXT PRIMARY KEY,
    data       BYTEA NOT NULL,
    byte_size  INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE job_references (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    sha256     TEXT NOT NULL REFERENCES reference_blobs (sha256),
    mime_type  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, position)
);

CREATE INDEX job_references_by_time ON job_references (created_at);
CREATE INDEX job_references_by_blob ON job_references (sha256);
