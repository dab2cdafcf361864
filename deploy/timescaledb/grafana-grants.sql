-- Run after every `ioc migrate` (compose service db-grants; on Kubernetes see
-- docs/deployment.md): the read-only Grafana role sees the dashboard tables, and of the
-- tables that hold plates only the columns the dashboards need. It never sees users,
-- audit_log, plate_crops, alert_evidence, sighting_evidence or watchlist_entries, nor a plate's
-- text, its look-alike skeleton, candidates, an alert's subject or evidence (column privileges;
-- the partitions and chunks below a table are reached through it).
GRANT USAGE ON SCHEMA public TO ioc_grafana;
GRANT SELECT ON checkpoint_counts, checkpoint_counts_hourly, checkpoint_counts_daily,
                sensor_readings, cameras
   TO ioc_grafana;
-- Recognition quality per camera (dashboard "IOC recognition quality").
GRANT SELECT (captured_at, camera_id, checkpoint_id, source, layout, confidence)
   ON plate_reads TO ioc_grafana;
GRANT SELECT (started_at, camera_id, checkpoint_id, reads, confidence, status)
   ON passages TO ioc_grafana;
-- Alert counts by kind, status and checkpoint (dashboard "IOC overview").
GRANT SELECT (raised_at, kind, severity, status, checkpoint_id)
   ON alerts TO ioc_grafana;
