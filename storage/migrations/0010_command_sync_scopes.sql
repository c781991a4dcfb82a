-- Reason: the operator's commands (/imagine-admin) are synced to one server of their own, so the command-sync
-- record keeps one hash per scope: guild_id 0 for the global commands, else the server's id.

CREATE TABLE command_syncs_by_scope (
    application_id BIGINT NOT NULL,
    guild_id       BIGINT NOT NULL DEFAULT 0,
    tree_hash      TEXT NOT NULL,
    synced_at      BIGINT NOT NULL,
    PRIMARY KEY (application_id, guild_id)
);

INSERT INTO command_syncs_by_scope (application_id, guild_id, tree_hash, synced_at)
SELECT application_id, 0, tree_hash, synced_at FROM command_syncs;

DROP TABLE command_syncs;

ALTER TABLE command_syncs_by_scope RENAME TO command_syncs;
