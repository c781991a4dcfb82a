-- Reason: content controls for server admins (docs/admins.md): blocked words, results posted as spoilers, a
-- moderation log of refused prompts, and one member's own quota limit that wins over role and member rules.

-- Each entry as Imagine compares it (folded: no case, accents or punctuation; docs/admins.md, Blocked words).
CREATE TABLE guild_blocked_words (
    guild_id BIGINT NOT NULL,
    word     TEXT NOT NULL,
    PRIMARY KEY (guild_id, word)
);

-- Flags: INTEGER 0 or 1. spoiler_exempt_nsfw: results in age-restricted channels are posted plainly.
ALTER TABLE guild_settings ADD COLUMN spoiler INTEGER NOT NULL DEFAULT 0 CHECK (spoiler IN (0, 1));
ALTER TABLE guild_settings ADD COLUMN spoiler_exempt_nsfw INTEGER NOT NULL DEFAULT 0
    CHECK (spoiler_exempt_nsfw IN (0, 1));
ALTER TABLE guild_settings ADD COLUMN mod_log INTEGER NOT NULL DEFAULT 0 CHECK (mod_log IN (0, 1));

-- One member's limit in a server (/quota member): it replaces role and member rules for that member. Kept apart
-- from quota_rules, whose key has no member.
CREATE TABLE quota_member_overrides (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    image_limit INTEGER NOT NULL CHECK (image_limit >= 0),
    period      TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
