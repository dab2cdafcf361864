-- Reference and operational tables: small, updated in place, never time-partitioned.

CREATE TABLE users (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          text NOT NULL CHECK (role IN ('officer', 'operator', 'supervisor', 'auditor', 'admin')),
    -- scrypt$<n>$<r>$<p>$<salt>$<hash>; a plain-text password cannot pass this check
    password_hash text NOT NULL CHECK (password_hash LIKE 'scrypt$%$%$%$%$%'),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cameras (
    camera_id           text PRIMARY KEY,
    checkpoint_id       text NOT NULL,
    expected_interval_s real NOT NULL DEFAULT 60 CHECK (expected_interval_s > 0),
    last_seen           timestamptz,
    online              boolean,          -- last judged health; NULL until first judged
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cameras_checkpoint_idx ON cameras (checkpoint_id);

CREATE TABLE watchlist_entries (
    entry_id   uuid PRIMARY KEY,
    pattern    text COLLATE "C" NOT NULL CHECK (pattern ~ '^[0-9A-ZĐ*?]{2,16}$'),
    reason     text NOT NULL,
    priority   smallint NOT NULL CHECK (priority BETWEEN 1 AND 5),
    expires_at timestamptz,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX watchlist_entries_pattern_idx ON watchlist_entries (pattern) WHERE active;
CREATE INDEX watchlist_entries_updated_idx ON watchlist_entries (updated_at);

CREATE TABLE alerts (
    alert_id      uuid PRIMARY KEY,
    kind          text NOT NULL,
    severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject       text NOT NULL,
    status        text NOT NULL
                  CHECK (status IN ('new', 'acknowledged', 'escalated', 'resolved', 'accepted', 'rejected')),
    raised_at     timestamptz NOT NULL,
    captured_at   timestamptz,
    checkpoint_id text,
    camera_id     text,
    read_id       uuid,
    evidence      jsonb NOT NULL DEFAULT '{}',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    stored_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_raised_idx ON alerts (raised_at DESC, alert_id DESC);
CREATE INDEX alerts_status_raised_idx ON alerts (status, raised_at DESC, alert_id DESC);
CREATE INDEX alerts_subject_idx ON alerts (subject, raised_at DESC);

-- Status history of an alert: who changed it, when, why.
CREATE TABLE alert_events (
    alert_event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id       uuid NOT NULL REFERENCES alerts ON DELETE CASCADE,
    status         text NOT NULL,
    actor          text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    note           text,
    reason         text
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, at);
CREATE INDEX alert_events_at_idx ON alert_events (at);

-- Who asked what, when and why. Rows can be added, never changed or removed.
CREATE TABLE audit_log (
    audit_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    role         text NOT NULL,
    action       text NOT NULL,
    query        jsonb NOT NULL DEFAULT '{}',
    purpose      text NOT NULL CHECK (length(btrim(purpose)) > 0),
    result_count integer NOT NULL CHECK (result_count >= 0)
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, audit_id DESC);

CREATE FUNCTION ioc_reject_audit_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ioc_reject_audit_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ioc_reject_audit_change();

-- One row per retention run (issue 5: each retention run is itself logged).
CREATE TABLE retention_runs (
    run_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    layout       text NOT NULL,
    read_cutoff  timestamptz NOT NULL,
    alert_cutoff timestamptz NOT NULL,
    dropped      jsonb NOT NULL,  -- {"plate_reads": ["chunk or partition", ...], ...}
    deleted      jsonb NOT NULL   -- {"alerts": 12, ...}: rows deleted one by one
);
