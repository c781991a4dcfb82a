-- Reason: members find their jobs again (docs/members.md, "Finding a job again"): /history lists a member's
-- recent jobs in a server, /show finds a job by a short reference (a prefix of its id, within the server); and a
-- server is welcomed once, however often the bot is removed and added again (docs/admins.md, "The welcome").

-- A member's jobs in a server, newest first.
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at);
-- A server's jobs by id: a reference is a range of ids (lowercase hex) within the server.
CREATE INDEX jobs_by_guild_id ON jobs (guild_id, id);

-- NULL: the server was never welcomed.
ALTER TABLE guild_settings ADD COLUMN welcomed_at BIGINT;
