-- Reason: messages the whole channel sees (a job's progress and result) and those the bot posts on its own speak
-- the server's language (docs/i18n.md). A job keeps the locale it was admitted with, so that a job resumed after
-- a restart speaks it too; a server may choose its language rather than follow its preferred locale.

-- A Discord locale code ("en-US", "ja", "es-419"); jobs stored before this change were told in English.
ALTER TABLE jobs ADD COLUMN locale TEXT NOT NULL DEFAULT 'en-US';

-- NULL: the server's preferred locale, as Discord sends it with each interaction; else a supported locale.
ALTER TABLE guild_settings ADD COLUMN language TEXT;
