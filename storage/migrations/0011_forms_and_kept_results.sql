-- Reason: Discord as it really is (docs/discord.md). A form a member opens ("Imagine from images", Remix) is
-- kept with what it needs, since the bot cannot read another member's message again (the Message Content
-- rule) and the form may be submitted after a restart. A job knows whether the bot may post in its channel
-- (if not, what outlives the interaction's reply goes to the member's DMs). A result nobody could receive
-- (the channel and the member's DMs both refused it) is kept, so it can be found later.

CREATE TABLE forms (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    guild_id   BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX forms_by_expiry ON forms (expires_at);

ALTER TABLE jobs ADD COLUMN channel_postable INTEGER NOT NULL DEFAULT 1 CHECK (channel_postable IN (0, 1));

CREATE TABLE kept_results (
    job_id     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL CHECK (position >= 0),
    data       BYTEA NOT NULL,
    mime_type  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, position)
);

CREATE INDEX kept_results_by_time ON kept_results (created_at);
