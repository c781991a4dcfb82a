-- Reason: per-server settings (allowed channels, maximum n, cooldown, log channel) and the command-sync record.

-- A server without a row has the defaults; the repository fills them in.
CREATE TABLE guild_settings (
    guild_id         BIGINT PRIMARY KEY,
    max_n            INTEGER NOT NULL DEFAULT 4 CHECK (max_n BETWEEN 1 AND 4),
    cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
    log_channel_id   BIGINT,
    updated_at       BIGINT NOT NULL
);

-- No row for a server: /imagine is allowed in every channel.
CREATE TABLE guild_allowed_channels (
    guild_id   BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE command_syncs (
    application_id BIGINT PRIMARY KEY,
    tree_hash      TEXT NOT NULL,
    synced_at      BIGINT NOT NULL
);
