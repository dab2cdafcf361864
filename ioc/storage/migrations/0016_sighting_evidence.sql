-- An incident's own copy of the crop of each sighting its route holds (evidence.route, the
-- newest sightings): the wanted vehicle's later stops, past the first camera. Reads and their
-- crops go after IOC_READ_RETENTION_DAYS, alerts after IOC_ALERT_RETENTION_DAYS: without this
-- the route lost its pictures while the alert still stood. Copied as a sighting is appended,
-- dropped when newer ones push it out of the route, and deleted with its alert (retention
-- deletes alerts row by row; alerts is a plain table on every layout, so the key may point at
-- it). Beside alert_evidence, not in it: that is the alert's own crop, kept as long as the
-- alert, while the route's crops follow the route.
CREATE TABLE sighting_evidence (
    alert_id  uuid NOT NULL REFERENCES alerts ON DELETE CASCADE,
    read_id   uuid NOT NULL,
    crop_jpeg bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, read_id)
);

-- the routes recorded before, while their reads' crops are still kept
INSERT INTO sighting_evidence (alert_id, read_id, crop_jpeg)
SELECT a.alert_id, c.read_id, c.crop_jpeg
  FROM alerts AS a
 CROSS JOIN LATERAL jsonb_array_elements(
           CASE jsonb_typeof(a.evidence->'route') WHEN 'array' THEN a.evidence->'route' ELSE '[]' END
       ) AS s(sighting)
  JOIN plate_crops AS c ON c.read_id = (s.sighting->>'read_id')::uuid
                       AND c.captured_at = (s.sighting->>'captured_at')::timestamptz
 WHERE a.kind = 'watchlist_hit'
ON CONFLICT DO NOTHING;
