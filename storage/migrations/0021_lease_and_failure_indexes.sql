-- Reason: two statements every process runs every few seconds read the whole job table, which is kept for good: the
-- renewal of a process's leases (which since covers a failed job until its member is told, so the index on unfinished
-- jobs' lease owners no longer serves it) and the look for failures nobody was told of. Each gets an index over the
-- few jobs it asks about; the engines use a partial index only when the query repeats its condition, so each index's
-- condition is the query's own (storage/jobs.py, `renew_leases` and `list_unannounced_failures`).

DROP INDEX jobs_by_lease_owner;
CREATE INDEX jobs_by_lease_owner ON jobs (lease_owner)
    WHERE (state NOT IN ('completed', 'failed') OR (state = 'failed' AND delivered_at IS NULL));

CREATE INDEX jobs_untold_failures ON jobs (finished_at) WHERE state = 'failed' AND delivered_at IS NULL;
