-- A run claimed by an agent runtime (queue submitter) is leased: if the lease runs out before
-- the runtime completes it or sends a heartbeat, the run goes back to the queue.
ALTER TABLE runs ADD COLUMN lease_expires_at_ms INTEGER;

CREATE INDEX runs_lease ON runs(lease_expires_at_ms) WHERE status = 'running' AND lease_expires_at_ms IS NOT NULL;
