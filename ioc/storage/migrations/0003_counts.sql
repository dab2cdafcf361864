-- Hourly and daily roll-ups of checkpoint_counts as plain tables, recomputed
-- (absolute values) by ioc_refresh_rollups for the hours and days a refresh
-- touched. With Timescale-License features, 0005 replaces both with
-- continuous aggregates of the same names and columns.

CREATE TABLE checkpoint_counts_hourly (
    bucket          timestamptz NOT NULL,
    checkpoint_id   text NOT NULL,
    direction       text NOT NULL,
    vehicle_class   text NOT NULL,
    origin          text NOT NULL,
    vehicles        bigint NOT NULL,
    sensor_vehicles double precision NOT NULL,
    qr_checkins     double precision NOT NULL,
    PRIMARY KEY (bucket, checkpoint_id, direction, vehicle_class, origin)
);
CREATE INDEX checkpoint_counts_hourly_checkpoint_idx ON checkpoint_counts_hourly (checkpoint_id, bucket DESC);

CREATE TABLE checkpoint_counts_daily (LIKE checkpoint_counts_hourly INCLUDING ALL);

CREATE FUNCTION ioc_refresh_rollups(since timestamptz, until timestamptz) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    hour_from timestamptz := ioc_time_bucket('1 hour', since);
    hour_to   timestamptz := ioc_time_bucket('1 hour', until - interval '1 microsecond') + interval '1 hour';
    day_from  timestamptz := ioc_time_bucket('1 day', since);
    day_to    timestamptz := ioc_time_bucket('1 day', until - interval '1 microsecond') + interval '1 day';
BEGIN
    INSERT INTO checkpoint_counts_hourly AS t
    SELECT ioc_time_bucket('1 hour', bucket), checkpoint_id, direction, vehicle_class, origin,
           sum(vehicles), sum(sensor_vehicles), sum(qr_checkins)
      FROM checkpoint_counts
     WHERE bucket >= hour_from AND bucket < hour_to
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, checkpoint_id, direction, vehicle_class, origin) DO UPDATE
       SET vehicles = excluded.vehicles, sensor_vehicles = excluded.sensor_vehicles,
           qr_checkins = excluded.qr_checkins
     WHERE (t.vehicles, t.sensor_vehicles, t.qr_checkins)
           IS DISTINCT FROM (excluded.vehicles, excluded.sensor_vehicles, excluded.qr_checkins);

    INSERT INTO checkpoint_counts_daily AS t
    SELECT ioc_time_bucket('1 day', bucket), checkpoint_id, direction, vehicle_class, origin,
           sum(vehicles), sum(sensor_vehicles), sum(qr_checkins)
      FROM checkpoint_counts_hourly
     WHERE bucket >= day_from AND bucket < day_to
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, checkpoint_id, direction, vehicle_class, origin) DO UPDATE
       SET vehicles = excluded.vehicles, sensor_vehicles = excluded.sensor_vehicles,
           qr_checkins = excluded.qr_checkins
     WHERE (t.vehicles, t.sensor_vehicles, t.qr_checkins)
           IS DISTINCT FROM (excluded.vehicles, excluded.sensor_vehicles, excluded.qr_checkins);
END
$$;
