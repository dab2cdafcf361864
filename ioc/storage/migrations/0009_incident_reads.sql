-- The reads each incident (a watchlist alert) has counted. Appending a sighting is
-- idempotent per read through this table, however old the read: evidence.route keeps
-- only the newest sightings, so it cannot tell a read counted long ago from a new one
-- (past-read matching runs on every worker, and dead letters are replayed).
CREATE TABLE incident_reads (
    alert_id uuid NOT NULL REFERENCES alerts ON DELETE CASCADE,
    read_id  uuid NOT NULL,
    PRIMARY KEY (alert_id, read_id)
);

-- what the routes hold has been counted
INSERT INTO incident_reads (alert_id, read_id)
SELECT DISTINCT a.alert_id, (s.sighting->>'read_id')::uuid
  FROM alerts AS a
 CROSS JOIN LATERAL jsonb_array_elements(
           CASE jsonb_typeof(a.evidence->'route') WHEN 'array' THEN a.evidence->'route' ELSE '[]' END
       ) AS s(sighting)
 WHERE a.kind = 'watchlist_hit' AND s.sighting ? 'read_id'
ON CONFLICT DO NOTHING;
