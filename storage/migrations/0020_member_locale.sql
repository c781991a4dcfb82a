-- Reason: a job's private messages (a content-policy refusal told to the requester alone, a result or failure sent
-- by direct message) and a private follow-up to an owed answer speak the member's own locale, while what the
-- channel sees speaks the server's (docs/i18n.md). Only the server's was stored, so they spoke it instead; a job
-- resumed after a restart, and an owed answer given by the next start, need the member's kept too.

-- The requester's Discord locale (`interaction.locale`) when the request was made. NULL: not known (a row written
-- before this change, or a request made in the conversation, which carries no member locale): its private
-- messages then speak the public `locale`, as they did. Left NULL rather than copied from `locale`: that would
-- claim a member's choice nobody knows, and a nullable column without a default is added on both engines without
-- rewriting a table that holds every job.
ALTER TABLE jobs ADD COLUMN member_locale TEXT;

ALTER TABLE owed_answers ADD COLUMN member_locale TEXT;
