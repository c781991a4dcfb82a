-- Reason: processes sharing the database each throttle their own alerts, but the operator's webhook must hear
-- of a burst once in all: the first process to report a burst of a kind claims it here, and a resolved
-- problem's claim is dropped.

CREATE TABLE alert_bursts (
    kind       TEXT PRIMARY KEY,
    claimed_at BIGINT NOT NULL
);
