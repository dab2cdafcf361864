-- Run after every `ioc migrate` (compose service db-grants; on Kubernetes see
-- docs/deployment.md): the read-only Grafana role sees the dashboard tables only,
-- never users, audit_log, plate_reads or plate_crops.
GRANT USAGE ON SCHEMA public TO ioc_grafana;
GRANT SELECT ON checkpoint_counts, checkpoint_counts_hourly, checkpoint_counts_daily,
                sensor_readings, cameras
   TO ioc_grafana;
