-- Reason: a job names its model's aspect ratio and resolution tier, and counts as a weighted number of images
-- (docs/admins.md, "How quotas count"); the weight is fixed when the job is admitted, kept with the job and its
-- reservation, so refunds give back exactly what was reserved. Servers choose which of the operator's models
-- they offer.
--
-- Jobs stored before this change used pixel sizes and counted one image each: 1024x1024 becomes 1:1, 1536x1024
-- 3:2 and 1024x1536 2:3, all at 1k with weight 1 (gpt-image-2's table maps those pairs to those very pixels).
-- The old `size` column stays (NOT NULL, read by nothing); new rows hold the aspect there too.

ALTER TABLE jobs ADD COLUMN aspect TEXT NOT NULL DEFAULT '1:1';
ALTER TABLE jobs ADD COLUMN resolution TEXT NOT NULL DEFAULT '1k';
ALTER TABLE jobs ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1);

UPDATE jobs SET aspect = CASE size
    WHEN '1536x1024' THEN '3:2'
    WHEN '1024x1536' THEN '2:3'
    ELSE '1:1'
END;

ALTER TABLE quota_ledger ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1);

ALTER TABLE usage_log ADD COLUMN aspect TEXT NOT NULL DEFAULT '1:1';
ALTER TABLE usage_log ADD COLUMN resolution TEXT NOT NULL DEFAULT '1k';
ALTER TABLE usage_log ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight >= 1);

UPDATE usage_log SET aspect = CASE size
    WHEN '1536x1024' THEN '3:2'
    WHEN '1024x1536' THEN '2:3'
    ELSE '1:1'
END;

-- The summaries count weighted images: the covering index carries the weight.
DROP INDEX usage_log_by_guild;
CREATE INDEX usage_log_by_guild ON usage_log (guild_id, created_at, user_id, images, weight, status);

-- NULL: every model the operator offers (TOAPIS_MODELS); else the model ids, comma-separated.
ALTER TABLE guild_settings ADD COLUMN models TEXT;
-- NULL: the operator's default model (TOAPIS_MODEL).
ALTER TABLE guild_settings ADD COLUMN default_model TEXT;
