-- Reason: ToAPIs sends each task's final event at least once, retrying for a day; a webhook only wakes the look-up
-- of its task. Each event id is stored before the webhook is answered, so a repeat is recognised and ignored,
-- and kept 25 hours (then pruned). An event whose task is followed by another process (the job's lease holder),
-- or not followed yet, names that process in `wake_owner`, which wakes its own follower and clears it.

CREATE TABLE webhook_events (
    event_id    TEXT PRIMARY KEY,
    task_id     TEXT,
    job_id      TEXT,
    received_at BIGINT NOT NULL,
    wake_owner  TEXT
);

CREATE INDEX webhook_events_by_received_at ON webhook_events (received_at);
-- Each process asks often for the wake-ups left for it: only the few rows still waiting are indexed.
CREATE INDEX webhook_events_to_wake ON webhook_events (wake_owner) WHERE wake_owner IS NOT NULL;

-- An event names its task; the job following it is found by the task when the event does not name the job.
CREATE INDEX jobs_by_task_id ON jobs (task_id) WHERE state NOT IN ('completed', 'failed');

-- The last time ToAPIs refused a submit's callback_url because webhooks are not set up for the key's Token
-- (`webhook_not_configured`): the operator is alerted once, and `python bot.py --check` reports it, until a
-- callback_url is accepted again.
CREATE TABLE webhook_problems (
    problem  TEXT PRIMARY KEY,
    noted_at BIGINT NOT NULL,
    detail   TEXT NOT NULL
);
