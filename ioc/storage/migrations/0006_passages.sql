-- Passages: the reads of one vehicle at one camera lane, voted into one result.
-- Derived from plate_reads by the workers' passage job (absolute values, so
-- recomputing is harmless); rows are replaced while a passage is provisional.
CREATE TABLE passages (
    passage_id    uuid PRIMARY KEY,
    camera_id     text NOT NULL,
    checkpoint_id text NOT NULL,
    lane          smallint NOT NULL,
    direction     text NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    text          text NOT NULL,
    display       text NOT NULL,
    confidence    real NOT NULL,
    reads         integer NOT NULL,
    support       integer NOT NULL,
    read_ids      uuid[] NOT NULL,
    best_read_id  uuid NOT NULL,
    status        text NOT NULL CHECK (status IN ('provisional', 'final')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX passages_started_idx ON passages (started_at DESC);
CREATE INDEX passages_text_idx ON passages (text, started_at DESC);
CREATE INDEX passages_checkpoint_idx ON passages (checkpoint_id, started_at DESC);
