-- An alert's own copy of the crop of the read it was raised for. Reads and their crops go
-- after IOC_READ_RETENTION_DAYS, alerts after IOC_ALERT_RETENTION_DAYS: without this an
-- alert older than the reads lost its picture. Deleted with its alert (retention deletes
-- alerts row by row; alerts is a plain table on every layout, so the key may point at it).
-- The read's other facts an alert is shown with (plate, time, place, direction,
-- confidence) are on the alerts row and its evidence already.
CREATE TABLE alert_evidence (
    alert_id  uuid PRIMARY KEY REFERENCES alerts ON DELETE CASCADE,
    crop_jpeg bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

-- the alerts raised before, while their reads' crops are still kept
INSERT INTO alert_evidence (alert_id, crop_jpeg)
SELECT a.alert_id, c.crop_jpeg
  FROM alerts AS a
  JOIN plate_crops AS c ON c.read_id = a.read_id AND c.captured_at = a.captured_at;
