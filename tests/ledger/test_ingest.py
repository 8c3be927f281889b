"""Telematics and duty batches: duplicates counted, skew refused, old and unknown flagged."""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger.application import Ledger
from ledger.drivers import DutyInput, DutyOrigin, DutyStatus
from ledger.log import iter_log
from ledger.telematics import Ping, PingFlag, PingInput, PingLog, PingSource
from support.clock import Clock
from support.factories import ADMIN, reference_data


def ping(device: str, seq: int | None, at: datetime, lat: float = 41.9) -> PingInput:
    return PingInput(device_id=device, seq=seq, occurred_at=at, lat=lat, lon=-87.6)


def events(ledger: Ledger) -> list[PingLog.PingsRecorded]:
    return [r.event for r in iter_log(ledger) if isinstance(r.event, PingLog.PingsRecorded)]


def recorded_pings(ledger: Ledger) -> list[Ping]:
    return [
        ping
        for record in iter_log(ledger)
        if isinstance(record.event, PingLog.PingsRecorded)
        for ping in record.event.pings
    ]


def test_duplicates_are_counted_not_stored_when_a_batch_repeats_pings(
    ledger: Ledger, clock: Clock
) -> None:
    at = clock.now - timedelta(minutes=30)
    batch = [ping("D1", 1, at), ping("D1", 2, at + timedelta(seconds=30)), ping("D1", 1, at)]

    first = ledger.ingest_pings(ADMIN, batch)
    second = ledger.ingest_pings(ADMIN, batch)

    assert (first.accepted, first.duplicates, first.refused) == (2, 1, [])
    assert (second.accepted, second.duplicates) == (0, 3)
    assert len(recorded_pings(ledger)) == 2


def test_pings_without_sequence_are_duplicates_when_device_and_time_match(
    ledger: Ledger, clock: Clock
) -> None:
    at = clock.now - timedelta(minutes=5)

    report = ledger.ingest_pings(
        ADMIN, [ping("D2", None, at), ping("D2", None, at, lat=42.0), ping("D3", None, at)]
    )

    assert (report.accepted, report.duplicates) == (2, 1)


def test_ping_is_refused_with_reason_when_dated_beyond_skew_in_the_future(
    ledger: Ledger, clock: Clock
) -> None:
    soon = clock.now + timedelta(minutes=4)
    too_far = clock.now + timedelta(minutes=6)

    report = ledger.ingest_pings(ADMIN, [ping("D1", 1, soon), ping("D1", 2, too_far)])

    assert report.accepted == 1
    assert len(report.refused) == 1
    index, reason = report.refused[0]
    assert index == 1
    assert "future" in reason and "300 s" in reason
    assert len(recorded_pings(ledger)) == 1


def test_old_and_unregistered_pings_are_recorded_and_flagged(ledger: Ledger, clock: Clock) -> None:
    reference_data(ledger)  # installs device DEV-1 on TRK-1
    old = clock.now - timedelta(days=45)
    fresh = clock.now - timedelta(minutes=1)

    report = ledger.ingest_pings(
        ADMIN, [ping("DEV-1", 1, fresh), ping("DEV-1", 2, old), ping("GHOST", 1, fresh)]
    )

    assert (report.accepted, report.flagged) == (3, 2)
    flags = {(e.device_id, p.seq): p.flags for e in events(ledger) for p in e.pings}
    assert flags[("DEV-1", 1)] == ()
    assert flags[("DEV-1", 2)] == (PingFlag.BEYOND_RETENTION,)
    assert flags[("GHOST", 1)] == (PingFlag.UNREGISTERED_DEVICE,)


def test_batch_lands_in_one_device_day_stream_each_when_pings_span_devices_and_days(
    ledger,
    clock,
) -> None:
    midnight = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    batch = [
        ping("A", 1, midnight - timedelta(seconds=10)),
        ping("A", 2, midnight + timedelta(seconds=10)),
        ping("B", 1, midnight + timedelta(seconds=20)),
    ]
    before = ledger.position

    report = ledger.ingest_pings(ADMIN, batch)

    streams = {r.stream for r in iter_log(ledger, after=before)}
    assert report.accepted == 3
    assert len(streams) == 3  # A yesterday, A today, B today
    assert len(events(ledger)) == 3  # one transaction, one event per device-day


def test_out_of_order_pings_are_all_kept_with_their_event_times(
    ledger: Ledger, clock: Clock
) -> None:
    base = clock.now - timedelta(hours=1)
    batch = [ping("D1", s, base + timedelta(seconds=30 * s)) for s in (5, 1, 4, 2, 3)]

    ledger.ingest_pings(ADMIN, batch)

    (recorded,) = events(ledger)
    assert [p.seq for p in recorded.pings] == [5, 1, 4, 2, 3]  # kept as they arrived
    assert [p.occurred_at for p in recorded.pings] == [p.occurred_at for p in batch]
    assert recorded.meta.occurred_at == min(p.occurred_at for p in batch)


def test_duty_changes_are_deduplicated_and_unknown_drivers_refused(
    ledger: Ledger, clock: Clock
) -> None:
    reference_data(ledger)
    at = clock.now - timedelta(hours=3)
    changes = [
        DutyInput("DRV-1", at, DutyStatus.ON_DUTY),
        DutyInput("DRV-1", at + timedelta(minutes=30), DutyStatus.DRIVING),
        DutyInput("DRV-1", at, DutyStatus.ON_DUTY),
        DutyInput("NOBODY", at, DutyStatus.DRIVING),
        DutyInput("DRV-1", at + timedelta(hours=1), DutyStatus.OFF_DUTY, DutyOrigin.DRIVER_EDITED),
    ]

    report = ledger.ingest_duty(ADMIN, changes)

    assert (report.accepted, report.duplicates) == (2, 1)
    assert [i for i, _ in report.refused] == [3, 4]
    assert "unknown driver NOBODY" in report.refused[0][1]
    assert "reason" in report.refused[1][1]


def test_a_batch_of_pings_is_stored_as_rows_and_the_earlier_per_ping_form_still_reads(
    ledger: Ledger, clock: Clock
) -> None:
    at = clock.now - timedelta(minutes=30)
    ledger.ingest_pings(ADMIN, [ping("D1", 1, at), ping("D1", 2, at + timedelta(seconds=30))])
    (event,) = events(ledger)
    stored = ledger.mapper.transcoder.encode(vars(event))
    assert b'"pings":{"_type_":"pings","_data_":[[1,' in stored

    # Events written before the row form boxed every ping on its own inside a tuple.
    row = '"gps",["unregistered_device"]'
    earlier = (
        b'{"device_id":"D1","pings":{"_type_":"tuple","_data_":['
        b'{"_type_":"ping","_data_":[1,"2026-11-20T09:00:00+00:00",41.9,-87.6,null,null,null,'
        + row.encode()
        + b"]}]}}"
    )
    (old,) = ledger.mapper.transcoder.decode(earlier)["pings"]
    assert old == Ping(
        1,
        datetime.fromisoformat("2026-11-20T09:00:00+00:00"),
        41.9,
        -87.6,
        None,
        None,
        None,
        PingSource.GPS,
        (PingFlag.UNREGISTERED_DEVICE,),
    )
