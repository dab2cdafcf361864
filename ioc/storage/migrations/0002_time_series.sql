-- Time-series tables. {{partition_by}} is empty on TimescaleDB (the tables become
-- hypertables right after) and PARTITION BY RANGE on plain PostgreSQL. Unique keys
-- include the time column, as both require.

CREATE TABLE plate_reads (
    read_id         uuid NOT NULL,
    captured_at     timestamptz NOT NULL,
    camera_id       text NOT NULL,
    checkpoint_id   text NOT NULL,
    lane            smallint NOT NULL DEFAULT 0,
    direction       text NOT NULL CHECK (direction IN ('in', 'out')),
    -- C collation: byte order, so the btree serves prefix LIKE ('30A12%') too
    text            text COLLATE "C" NOT NULL,
    skeleton        text COLLATE "C" NOT NULL GENERATED ALWAYS AS (ioc_plate_skeleton(text)) STORED,
    display         text NOT NULL,
    confidence      real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    layout          text,
    colour          text NOT NULL DEFAULT 'unknown',
    province        text,
    out_of_province boolean,
    source          text NOT NULL CHECK (source IN ('camera', 'edge')),
    source_event_id uuid NOT NULL,
    candidates      jsonb NOT NULL DEFAULT '[]',
    bbox            integer[] CHECK (bbox IS NULL OR cardinality(bbox) = 4),
    vehicle_class   text NOT NULL DEFAULT 'unknown',
    has_crop        boolean NOT NULL DEFAULT false,
    processed_at    timestamptz NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (read_id, captured_at)
) {{partition_by}};
CREATE INDEX plate_reads_captured_idx ON plate_reads (captured_at DESC);
CREATE INDEX plate_reads_text_idx ON plate_reads (text, captured_at DESC, read_id DESC);
CREATE INDEX plate_reads_skeleton_idx ON plate_reads (skeleton, captured_at DESC, read_id DESC);
CREATE INDEX plate_reads_checkpoint_idx ON plate_reads (checkpoint_id, captured_at DESC);

-- Crops apart, so plate_reads stays narrow and look-ups stay in memory.
CREATE TABLE plate_crops (
    read_id     uuid NOT NULL,
    captured_at timestamptz NOT NULL,
    crop_jpeg   bytea NOT NULL,
    PRIMARY KEY (read_id, captured_at)
) {{partition_by}};

CREATE TABLE sensor_readings (
    event_id      uuid NOT NULL,
    captured_at   timestamptz NOT NULL,
    sensor_id     text NOT NULL,
    checkpoint_id text NOT NULL,
    sensor_kind   text NOT NULL CHECK (sensor_kind IN ('vehicle_count', 'qr_checkin', 'environment')),
    value         double precision NOT NULL,
    unit          text NOT NULL,
    direction     text CHECK (direction IN ('in', 'out')),
    vehicle_class text,
    stored_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, captured_at)
) {{partition_by}};
CREATE INDEX sensor_readings_captured_idx ON sensor_readings (captured_at DESC);
CREATE INDEX sensor_readings_checkpoint_idx ON sensor_readings (checkpoint_id, captured_at DESC);
CREATE INDEX sensor_readings_sensor_idx ON sensor_readings (sensor_id, captured_at DESC);

-- One-minute windows. Values are absolute (recomputed from the rows above), so
-- writing a window twice gives the same result as writing it once.
CREATE TABLE checkpoint_counts (
    bucket          timestamptz NOT NULL,
    checkpoint_id   text NOT NULL,
    direction       text NOT NULL,   -- in | out | unknown
    vehicle_class   text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('home', 'out_of_province', 'unknown')),
    vehicles        integer NOT NULL DEFAULT 0 CHECK (vehicles >= 0),         -- plate reads
    sensor_vehicles double precision NOT NULL DEFAULT 0,                      -- vehicle counters
    qr_checkins     double precision NOT NULL DEFAULT 0,                      -- QR check-ins
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, checkpoint_id, direction, vehicle_class, origin)
);
CREATE INDEX checkpoint_counts_checkpoint_idx ON checkpoint_counts (checkpoint_id, bucket DESC);
