-- Runs: a selection of observations materialized into one composed input for an agent, handed
-- to a run submitter (queue, openai, http). The composed input is kept on the run; the output,
-- usage or error once it finishes.
CREATE TABLE runs (
  run_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  -- queued | running | completed | failed
  status TEXT NOT NULL,
  -- queue | openai | http: the submitter chosen when the run was created.
  submitter TEXT NOT NULL,
  target_session_id TEXT NOT NULL,
  -- Position of this run's input in the session's input journal.
  session_input_offset INTEGER NOT NULL,
  -- JSON arrays: what the run involves.
  observation_ids TEXT NOT NULL,
  asset_ids TEXT NOT NULL,
  source_ids TEXT NOT NULL,
  stream_ids TEXT NOT NULL,
  -- The most restrictive sensitivity involved (null for an empty run).
  sensitivity TEXT,
  -- 0 when any involved source has allow_output_delivery = false: the output stays inside observd.
  output_delivery_allowed INTEGER NOT NULL,
  raw_asset_policy TEXT NOT NULL,
  -- The composed input (JSON).
  input TEXT NOT NULL,
  output TEXT,
  usage TEXT,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  started_at_ms INTEGER,
  -- http submitter: when the agent runtime accepted the run (2xx).
  submitted_at_ms INTEGER,
  finished_at_ms INTEGER
) STRICT;

CREATE INDEX runs_status ON runs(status, run_id);
CREATE INDEX runs_session ON runs(target_session_id, run_id);

-- The raw assets a queued or running run will hand to its submitter: a blob holder
-- (src/assets/repo.ts HOLDERS). Rows go when the run finishes.
CREATE TABLE run_assets (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  asset_id TEXT NOT NULL,
  PRIMARY KEY (run_id, asset_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX run_assets_asset ON run_assets(asset_id);

-- Each session's input journal: every run appends its composed input at the next offset
-- (0, 1, 2, ...). `session_input` derivation subjects read it. `content` (the composed input)
-- is the record; `text_asset_id` is that input rendered as text/plain, written just after the
-- run commits (null until then) and a blob holder.
CREATE TABLE session_inputs (
  session_id TEXT NOT NULL,
  offset INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  content TEXT NOT NULL,
  text_asset_id TEXT,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (session_id, offset)
) STRICT, WITHOUT ROWID;

CREATE INDEX session_inputs_text_asset ON session_inputs(text_asset_id);
