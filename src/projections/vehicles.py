"""Vehicle positions: the last known fix per device by event time, with freshness at read.

A late ping never overwrites a newer one: the row moves only when the incoming fix is later
in (fix time, log position) than the one it holds (`timeline.fold_vehicle`'s order).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.log import LogRecord
from ledger.telematics import Device
from ledger.timeline import VehiclePosition, fold_vehicle
from projections.view import Batch, View, iso

__all__ = ["VehiclePositions"]

_UPSERT = """
INSERT INTO vehicle_positions (device_id, vehicle_code, lat, lon, speed_kph, heading, fix_at,
    ping_id, position)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,
    speed_kph = excluded.speed_kph, heading = excluded.heading, fix_at = excluded.fix_at,
    ping_id = excluded.ping_id, position = excluded.position
WHERE excluded.fix_at > vehicle_positions.fix_at
   OR (excluded.fix_at = vehicle_positions.fix_at
       AND excluded.position > vehicle_positions.position)
"""
_INSTALL = """
INSERT INTO vehicle_positions (device_id, vehicle_code, lat, lon, fix_at, ping_id, position)
VALUES (%s, %s, 0, 0, '', '', 0)
ON CONFLICT (device_id) DO UPDATE SET vehicle_code = excluded.vehicle_code
"""


class VehiclePositions(View):
    name = "vehicle_positions"
    tables = ("vehicle_positions",)

    def apply(self, batch: Batch, records: Sequence[LogRecord]) -> None:
        latest: dict[str, VehiclePosition] = {}
        for record in records:
            if isinstance(record.event, Device.Installed):
                batch.cursor.execute(_INSTALL, (record.event.device_id, record.event.vehicle_code))
        by_device: dict[str, list[LogRecord]] = {}
        for record in records:
            device = getattr(record.event, "device_id", None)
            if device is not None and not isinstance(record.event, Device.Installed):
                by_device.setdefault(device, []).append(record)
        for device, device_records in by_device.items():
            best = fold_vehicle(device_records)
            if best is not None:
                latest[device] = best
        rows = [
            (
                p.device_id,
                None,
                p.ping.lat,
                p.ping.lon,
                p.ping.speed_kph,
                p.ping.heading,
                iso(p.ping.occurred_at),
                p.ping_id,
                p.position,
            )
            for p in latest.values()
        ]
        batch.cursor.executemany(_UPSERT, rows)
