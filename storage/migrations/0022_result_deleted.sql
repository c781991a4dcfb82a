-- Reason: /history linked to a result whose message was deleted (by its Delete button, the member or a moderator),
-- a link that jumps to nothing, and /show fetched it to find it gone. The bot now records the deletion on the job.

-- When the job's result message was seen deleted; NULL while it stands (or for rows written before this change,
-- whose deletions were not seen: their links behave as before).
ALTER TABLE jobs ADD COLUMN result_deleted_at BIGINT;

-- Every message deleted in a server the bot sees is looked up by its id: the few jobs with a result message, by it.
CREATE INDEX jobs_by_result_message ON jobs (result_message_id) WHERE result_message_id IS NOT NULL;
