-- Timescale-License features, applied only where they work (and applied later,
-- on the next migrate, if a server gains them). The roll-up tables of 0003 become
-- continuous aggregates with the same names and columns; compression for the
-- append-only series. plate_reads stays uncompressed: plate look-ups need its
-- btree indexes, which compressed chunks do not keep.

DROP TABLE IF EXISTS checkpoint_counts_daily;
DROP TABLE IF EXISTS checkpoint_counts_hourly;

CREATE MATERIALIZED VIEW checkpoint_counts_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', c.bucket) AS bucket,
       c.checkpoint_id, c.direction, c.vehicle_class, c.origin,
       sum(c.vehicles) AS vehicles,
       sum(c.sensor_vehicles) AS sensor_vehicles,
       sum(c.qr_checkins) AS qr_checkins
  FROM checkpoint_counts c
 GROUP BY time_bucket(INTERVAL '1 hour', c.bucket), c.checkpoint_id, c.direction, c.vehicle_class, c.origin
WITH NO DATA;

CREATE MATERIALIZED VIEW checkpoint_counts_daily
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', h.bucket) AS bucket,
       h.checkpoint_id, h.direction, h.vehicle_class, h.origin,
       sum(h.vehicles)::bigint AS vehicles,
       sum(h.sensor_vehicles) AS sensor_vehicles,
       sum(h.qr_checkins) AS qr_checkins
  FROM checkpoint_counts_hourly h
 GROUP BY time_bucket(INTERVAL '1 day', h.bucket), h.checkpoint_id, h.direction, h.vehicle_class, h.origin
WITH NO DATA;

SELECT add_continuous_aggregate_policy('checkpoint_counts_hourly',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('checkpoint_counts_daily',
    start_offset => INTERVAL '10 days', end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- The aggregates refresh themselves (policies, plus real-time aggregation).
CREATE OR REPLACE FUNCTION ioc_refresh_rollups(since timestamptz, until timestamptz) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    NULL;
END
$$;

ALTER TABLE sensor_readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'checkpoint_id, sensor_id',
    timescaledb.compress_orderby = 'captured_at DESC');
SELECT add_compression_policy('sensor_readings', compress_after => INTERVAL '7 days', if_not_exists => true);

ALTER TABLE checkpoint_counts SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'checkpoint_id',
    timescaledb.compress_orderby = 'bucket DESC');
SELECT add_compression_policy('checkpoint_counts', compress_after => INTERVAL '30 days', if_not_exists => true);
