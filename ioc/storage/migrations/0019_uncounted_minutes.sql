-- Minutes whose checkpoint count windows changed and are not recounted yet: queued by the
-- transaction that stores the rows the windows are made of (edge reads, passages, counter readings),
-- taken off by the transaction that recounts them (ioc.storage.uncounted_minutes). A worker kept
-- them in its memory before, until its next refresh (every 10 s): killed or stopped in between, it
-- lost them, and a minute older than the restarted worker's sweep (15 minutes: a camera's backlog
-- uploaded after an outage) stayed miscounted for good. Append-only, so that writers never wait
-- on one another; a minute may be queued many times, and is recounted once per refresh.
CREATE TABLE uncounted_minutes (
    queued_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    minute    timestamptz NOT NULL
);
