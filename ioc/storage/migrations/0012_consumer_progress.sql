-- How far the workers have processed each partition of the topics that carry cameras'
-- events, as a time: camera health judges silence against the earliest of them, so that
-- a backlog (after a database outage, or a worker behind) is not taken for silent cameras.
CREATE TABLE consumer_progress (
    topic          text        NOT NULL,
    partition      integer     NOT NULL CHECK (partition >= 0),
    processed_to   timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
