-- Every alert change reaches the alerts topic, with its version. Each path stored a change, committed,
-- then published it: a process killed in between (a rollout's SIGTERM, OOM) lost the publish for
-- good, the alert in the list but never on the topic; and two changes of one alert (a worker
-- appending a sighting, an operator acknowledging) could be published in the opposite order of
-- their commits, the consoles then showing the older state.
--
-- An alert's revision moves on with every change that changes it, made by any process or by hand:
-- consumers keep the highest per alert_id. Existing alerts start at 1, as new ones do.
ALTER TABLE alerts ADD COLUMN revision bigint NOT NULL DEFAULT 1;

CREATE FUNCTION alerts_next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER alerts_next_revision BEFORE UPDATE ON alerts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION alerts_next_revision();

-- The transactional outbox: each alert with a change not yet published, queued by the transaction
-- that commits the change (no code path can forget it). A publisher deletes what it published
-- (ioc.storage.alert_outbox.published); the workers publish what stays queued too long
-- (streams.agents.alert_outbox). queued_at is when the oldest change not yet published was queued
-- (a newer change only moves the revision on), or when a worker last took it to publish it.
-- Deleted with the alert.
CREATE TABLE alert_outbox (
    alert_id  uuid PRIMARY KEY REFERENCES alerts ON DELETE CASCADE,
    revision  bigint NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_outbox_queued_idx ON alert_outbox (queued_at);

CREATE FUNCTION alerts_queue_for_publishing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.revision = OLD.revision THEN
        RETURN NULL;  -- an update that changed nothing: nothing new to publish
    END IF;
    INSERT INTO alert_outbox (alert_id, revision) VALUES (NEW.alert_id, NEW.revision)
    ON CONFLICT (alert_id) DO UPDATE SET revision = greatest(alert_outbox.revision, EXCLUDED.revision);
    RETURN NULL;
END
$$;

CREATE TRIGGER alerts_queue_for_publishing AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_queue_for_publishing();
