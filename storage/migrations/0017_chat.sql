-- Reason: members ask in the conversation (docs/members.md, "In the conversation"): a message that mentions the
-- bot starts a job. Discord may deliver a message twice (a MESSAGE_CREATE repeated after a RESUME, or seen by
-- two processes during a deploy), so each source message is claimed once, here, before anything is answered:
-- the claim names the bot's reply once it is posted, and the job once it is admitted (in the job's own
-- transaction). A claim with neither a job nor an answer after a crash is answered at the next start. Server
-- admins may turn the conversational way off; the usage log says where each job came from.

CREATE TABLE message_requests (
    source_message_id BIGINT PRIMARY KEY,
    guild_id          BIGINT NOT NULL,
    channel_id        BIGINT NOT NULL,
    user_id           BIGINT NOT NULL,
    -- The bot's reply (the job's progress and result), once posted.
    reply_message_id  BIGINT,
    -- The job it became (set with the job, in one transaction); NULL while it is not one.
    job_id            TEXT,
    -- When the member was answered without a job (a refusal, an error, a restart).
    answered_at       BIGINT,
    locale            TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

-- The start-up looks for recent claims left with neither a job nor an answer; upkeep deletes old claims.
CREATE INDEX message_requests_by_time ON message_requests (created_at);

-- 1: members may start jobs by mentioning the bot in this server (the default); 0: only commands.
ALTER TABLE guild_settings ADD COLUMN chat INTEGER NOT NULL DEFAULT 1 CHECK (chat IN (0, 1));

-- How the job was asked for: 'command' (/imagine), 'button' (Re-roll, Vary), 'form' (Imagine from images) or
-- 'message' (a mention). Rows written before this change are told by their job's kind where the job is known.
ALTER TABLE usage_log ADD COLUMN source TEXT NOT NULL DEFAULT 'command';

UPDATE usage_log SET source = CASE (SELECT kind FROM jobs WHERE jobs.id = usage_log.job_id)
    WHEN 'reroll' THEN 'button'
    WHEN 'vary' THEN 'button'
    WHEN 'context' THEN 'form'
    WHEN 'remix' THEN 'form'
    ELSE 'command'
END;
