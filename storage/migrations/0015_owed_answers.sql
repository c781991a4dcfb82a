-- Reason: every acknowledged request gets an answer (docs/guarantees.md). Between a request's deferred reply
-- and its admission the bot reads and checks its images, which takes seconds; a crash then left the member
-- with "thinking..." for good. Right after the deferral the bot writes what answering later needs (never the
-- images); admission deletes the row in the job's own transaction, an answer deletes it too, and whatever is
-- left at start-up (or whose process stopped renewing it) is answered then.

CREATE TABLE owed_answers (
    interaction_id    BIGINT PRIMARY KEY,
    guild_id          BIGINT NOT NULL,
    channel_id        BIGINT NOT NULL,
    user_id           BIGINT NOT NULL,
    application_id    BIGINT NOT NULL,
    interaction_token TEXT NOT NULL,
    token_expires_at  BIGINT NOT NULL,
    reply_message_id  BIGINT,
    -- NULL when the request names its prompt only later (a button that repeats a stored job).
    prompt            TEXT,
    -- The request's options as given (JSON: kind, n, model, aspect, resolution, how many images it attached).
    options           TEXT NOT NULL,
    locale            TEXT NOT NULL,
    channel_postable  INTEGER NOT NULL CHECK (channel_postable IN (0, 1)),
    owner             TEXT NOT NULL,
    lease_expires_at  BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE INDEX owed_answers_by_lease ON owed_answers (lease_expires_at);
