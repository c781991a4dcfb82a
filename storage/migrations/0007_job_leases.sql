-- Reason: several bot processes share the job table; a lease with an expiry says which one works a job.
-- A job is taken when it has no lease, when its lease expired (its process died), or when it is ours already.

ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;

-- Renewing a process's leases reads only its unfinished jobs.
CREATE INDEX jobs_by_lease_owner ON jobs (lease_owner) WHERE state NOT IN ('completed', 'failed');
