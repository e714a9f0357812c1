-- Erasure: what mentions an observation outside its own row is found by index, so deleting,
-- purging or evicting one scrubs those mentions without scanning the tables.
-- The runs that involved each observation (runs.observation_ids as rows).
CREATE TABLE run_observations (
  observation_id TEXT NOT NULL,
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  PRIMARY KEY (observation_id, run_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX run_observations_run ON run_observations(run_id);

INSERT OR IGNORE INTO run_observations (observation_id, run_id)
  SELECT j.value, r.run_id FROM runs r, json_each(r.observation_ids) j;

-- `observation.created` events carry the stream id.
CREATE INDEX events_created_observation ON events(json_extract(data, '$.observation_id')) WHERE type = 'observation.created';

-- A used signed upload keeps its file name until its tombstone goes.
CREATE INDEX uploads_observation ON uploads(observation_id) WHERE observation_id IS NOT NULL;
