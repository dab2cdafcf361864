"""``ioc_checkpoint_vehicles_total``: vehicles per checkpoint, direction and origin, as the
database's count windows count them (``ioc.storage.checkpoint_counts``): an edge camera's read
is a vehicle, and a frame camera's vehicle is a passage (several frames, one vehicle), counted
once it is final.

The ``checkpoint`` label comes from the camera registry: a read's own checkpoint only where its
camera is registered there, else ``unknown``. A label per value that a faulty gateway puts in
its payload would make series without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from detectors import plate_format
from ioc import metrics
from ioc.schemas import PlateRead
from ioc.storage.cameras import Camera
from ioc.storage.passages import PassageRow

UNKNOWN_CHECKPOINT = "unknown"
# as ioc.storage.checkpoint_counts derives a window's origin from the read's province
_ORIGIN = {True: "out_of_province", False: "home", None: "unknown"}


def checkpoint_label(camera_id: str, checkpoint_id: str, cameras: Mapping[str, Camera]) -> str:
    camera = cameras.get(camera_id)
    registered = camera is not None and camera.checkpoint_id == checkpoint_id
    return checkpoint_id if registered else UNKNOWN_CHECKPOINT


def count_edge_reads(reads: Iterable[PlateRead], cameras: Mapping[str, Camera]) -> None:
    _count((checkpoint_label(r.camera_id, r.checkpoint_id, cameras), r.direction, _ORIGIN[r.out_of_province])
           for r in reads if r.source == "edge")


def count_final_passages(
    rows: Iterable[PassageRow], cameras: Mapping[str, Camera], home_province: str
) -> None:
    """A passage rebuilt after a restart from the last minute's reads is counted again: the
    counter may run a vehicle or two ahead of the database's windows around a restart."""

    def origin(text: str) -> str:
        return _ORIGIN[plate_format.out_of_province(plate_format.province_of(text), home_province)]

    _count((checkpoint_label(row.camera_id, row.checkpoint_id, cameras), row.direction, origin(row.text))
           for row in rows if row.status == "final")


def _count(labels: Iterable[tuple[str, str, str]]) -> None:
    for each, n in Counter(labels).items():
        metrics.CHECKPOINT_VEHICLES.labels(*each).inc(n)
