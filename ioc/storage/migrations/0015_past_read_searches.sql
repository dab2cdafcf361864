-- The searches of past reads made for each version of a watchlist entry (what decides which reads it
-- matches: its pattern, expiry and active flag), by any worker (streams.agents.past_reads): every
-- worker searched every entry twice whenever it started, tens of thousands of searches of a day of
-- reads at a rolling restart that raised nothing new. A version two searches were made for is
-- searched by no worker again. Deleted when a worker sees the version replaced, and by retention.
CREATE TABLE past_read_searches (
    entry_id   uuid        NOT NULL,
    pattern    text COLLATE "C" NOT NULL,
    expires_at timestamptz,
    active     boolean     NOT NULL,
    searches   smallint    NOT NULL CHECK (searches IN (1, 2)),
    first_at   timestamptz NOT NULL DEFAULT now(),  -- when the first search was made (the database's clock)
    UNIQUE NULLS NOT DISTINCT (entry_id, pattern, expires_at, active)
);
