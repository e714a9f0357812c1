-- Observations created from a URL observd fetched record where from (no credentials, query or
-- fragment), and listings filter on processing_status through their own index: the failed few
-- among a million observations are found without a scan.
ALTER TABLE observations ADD COLUMN origin_url TEXT;
CREATE INDEX observations_status_captured ON observations(processing_status, captured_at_ms, observation_id)
  WHERE processing_status IS NOT NULL;
