-- Whether a source's raw media and canonical text may leave the machine: sent to an external run
-- submitter (openai, http) or to the transcription backend. NULL means the default for its
-- sensitivity: allowed for public/internal (Kheish's "standard"), withheld for sensitive/restricted.
ALTER TABLE sources ADD COLUMN allow_external_processing INTEGER;

-- The observations of a run whose media and text were withheld from its external submitter
-- (JSON array of observation ids).
ALTER TABLE runs ADD COLUMN external_processing_withheld TEXT NOT NULL DEFAULT '[]';

-- 1 when a derivation was not computed because its subject's source does not allow external
-- processing (the transcription backend); it is then failed with an error saying so.
ALTER TABLE derivations ADD COLUMN external_processing_withheld INTEGER NOT NULL DEFAULT 0;
