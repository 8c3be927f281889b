"""The demo's world, generated from a seed: shippers, carriers, fleet, sites, catalog, orders.

Pure: no ledger, no clock, no I/O. The same seed and sizes give the same world, value for
value (every random draw comes from a `random.Random` seeded with a string, which Python
hashes with SHA-512, so neither PYTHONHASHSEED nor the platform changes it).

Geography: Chicago's bounding box (lat 41.64–42.02, lon −87.94 to −87.52), west of the Lake
Michigan shoreline; customer geofences never overlap one another.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

from ledger.imports import ship_to_code
from ledger.values import Rates

__all__ = [
    "CHICAGO",
    "DAY",
    "Customer",
    "DriverSpec",
    "OrderSpec",
    "RateSpec",
    "Site",
    "SkuSpec",
    "StockLot",
    "VehicleSpec",
    "World",
    "build_world",
    "km_between",
    "local",
]

CHICAGO = ZoneInfo("America/Chicago")
DAY = date(2026, 11, 20)
"""The simulated operating day (a Friday; Chicago is on Central Standard Time, UTC−6)."""

LAT_MIN, LAT_MAX = 41.64, 42.02
LON_MIN, LON_MAX = -87.94, -87.52
# The Lake Michigan shoreline, south to north: land is west of it.
_SHORE = (
    (41.64, -87.525),
    (41.70, -87.530),
    (41.76, -87.550),
    (41.80, -87.580),
    (41.85, -87.605),
    (41.88, -87.615),
    (41.90, -87.622),
    (41.95, -87.640),
    (42.00, -87.660),
    (42.02, -87.668),
)
_DOWNTOWN = (41.8819, -87.6278)  # State & Madison: the origin of Chicago's street numbers

_STREETS = (
    "Clark",
    "Halsted",
    "Ashland",
    "Western",
    "Pulaski",
    "Cicero",
    "Damen",
    "Racine",
    "Kedzie",
    "California",
    "Central",
    "Harlem",
    "Belmont",
    "Fullerton",
    "Diversey",
    "Irving Park",
    "Lawrence",
    "Foster",
    "Devon",
    "Touhy",
    "Madison",
    "Roosevelt",
    "Cermak",
    "Archer",
    "Pershing",
    "Milwaukee",
    "Elston",
    "Lincoln",
    "Broadway",
    "Sheridan",
    "Cottage Grove",
    "Stony Island",
    "Ogden",
    "Grand",
    "Division",
    "Armitage",
    "Addison",
    "Montrose",
    "Kostner",
    "Narragansett",
)
_NEIGHBOURHOODS = (
    "Lakeview",
    "Pilsen",
    "Bridgeport",
    "Logan Square",
    "Hyde Park",
    "Wicker Park",
    "Edgewater",
    "Rogers Park",
    "Uptown",
    "Avondale",
    "Portage Park",
    "Jefferson Park",
    "Chatham",
    "Beverly",
    "Austin",
    "Humboldt Park",
    "Little Village",
    "Bronzeville",
    "Albany Park",
    "Garfield Ridge",
    "Norwood Park",
    "South Shore",
    "Back of the Yards",
    "West Loop",
    "Ravenswood",
)
_FIRST_NAMES = (
    "Ana",
    "Marcus",
    "Dana",
    "Luis",
    "Keisha",
    "Tomasz",
    "Maria",
    "Jamal",
    "Erin",
    "Viktor",
    "Rosa",
    "Darnell",
    "Priya",
    "Kevin",
    "Olga",
    "Andre",
    "Gloria",
    "Sean",
    "Mei",
    "Hector",
)
_LAST_NAMES = (
    "Lopez",
    "Johnson",
    "Kowalski",
    "Nguyen",
    "Washington",
    "Garcia",
    "O'Brien",
    "Patel",
    "Novak",
    "Williams",
    "Hernandez",
    "Brown",
    "Kim",
    "Murphy",
    "Jackson",
    "Rivera",
    "Schmidt",
    "Davis",
    "Okafor",
    "Wilson",
)
# Receiving windows customers publish (local hours).
_WINDOWS = (
    ((7, 0), (11, 0)),
    ((8, 0), (12, 0)),
    ((8, 0), (16, 0)),
    ((9, 0), (13, 0)),
    ((10, 0), (15, 0)),
    ((12, 0), (17, 0)),
    ((7, 0), (17, 0)),
)
_WINDOW_WEIGHTS = (3, 4, 5, 3, 3, 2, 4)
_APPOINTMENT_WINDOWS = (((8, 0), (11, 0)), ((9, 0), (12, 0)), ((11, 0), (14, 0)))


def local(clock: tuple[int, int] | time, day: date = DAY) -> datetime:
    """A local Chicago wall-clock time on `day`, as an aware datetime."""
    moment = clock if isinstance(clock, time) else time(*clock)
    return datetime.combine(day, moment, tzinfo=CHICAGO)


def km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km (the planner's haversine, without its detour factor)."""
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    dphi, dlam = phi2 - phi1, math.radians(b[1] - a[1])
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class Site:
    """A place with a geofence: a warehouse, a carrier yard or a customer's dock."""

    code: str
    name: str
    address: str
    lat: float
    lon: float
    radius_m: float
    dock_notes: str = ""
    opening_hours: str = ""
    appointment_required: bool = False
    owner: str | None = None

    @property
    def point(self) -> tuple[float, float]:
        return (self.lat, self.lon)


@dataclass(frozen=True)
class Customer:
    """A shipper's customer dock: its site, its receiving window and what unloading needs."""

    tenant: str
    site: Site
    window: tuple[tuple[int, int], tuple[int, int]]
    liftgate: bool
    lumper: bool

    @property
    def code(self) -> str:
        return self.site.code


@dataclass(frozen=True)
class SkuSpec:
    code: str
    tenant: str
    description: str
    case_kg: Decimal
    case_m3: Decimal
    perishable: bool


@dataclass(frozen=True)
class StockLot:
    """Stock a warehouse received before the day: one lot of one sku, maybe with an expiry."""

    warehouse: str
    sku: str
    lot: str
    quantity: int
    expiry: date | None
    received: datetime


@dataclass(frozen=True)
class VehicleSpec:
    code: str
    carrier: str
    warehouse: str
    device: str
    driver: str
    kind: str
    capacity_kg: int
    capacity_m3: int
    pallets: int


@dataclass(frozen=True)
class DriverSpec:
    code: str
    first_name: str
    last_name: str
    carrier: str
    heavy_week: bool
    """Worked long days all week: little of the 70-hour cycle is left today."""


@dataclass(frozen=True)
class OrderSpec:
    reference: str
    tenant: str
    customer: Customer
    lines: tuple[tuple[str, int], ...]
    service_minutes: int
    service_level: str
    notes: str

    @property
    def ship_to_code(self) -> str:
        return self.customer.code


@dataclass(frozen=True)
class RateSpec:
    card: str
    carrier: str
    rates: Rates


@dataclass(frozen=True)
class World:
    seed: int
    accounts: tuple[tuple[str, str], ...]
    carriers: tuple[tuple[str, str, str], ...]
    rate_cards: tuple[RateSpec, ...]
    warehouses: tuple[Site, ...]
    yards: tuple[Site, ...]
    vehicles: tuple[VehicleSpec, ...]
    drivers: tuple[DriverSpec, ...]
    customers: tuple[Customer, ...]
    skus: tuple[SkuSpec, ...]
    orders: tuple[OrderSpec, ...]
    stock: tuple[StockLot, ...]
    home: dict[str, str]
    """Customer code → the warehouse that serves it (the nearer one)."""

    def warehouse(self, code: str) -> Site:
        return next(w for w in self.warehouses if w.code == code)

    def yard_of(self, warehouse: str) -> Site:
        return next(y for y in self.yards if y.code == f"YARD-{warehouse.removeprefix('WH-')}")

    def sku(self, code: str) -> SkuSpec:
        return next(s for s in self.skus if s.code == code)


ACCOUNTS = (("ACME", "Acme Foods"), ("BOREAL", "Boreal Beverages"))
CARRIERS = (("FAST", "Fast Freight", "FSTF"), ("LAKE", "Lakeshore Logistics", "LKSL"))
RATE_CARDS = (
    RateSpec(
        "RC-FAST-2026",
        "FAST",
        Rates(
            per_mile=Decimal("3.10"),
            minimum=Decimal("275.00"),
            fuel_surcharge_pct=Decimal("18.5"),
            stop_off=Decimal("45.00"),
            detention_hourly=Decimal("75.00"),
            layover=Decimal("250.00"),
            tonu=Decimal("200.00"),
            accessorials=(("INSIDE", Decimal("60.00")), ("LIFTGATE", Decimal("35.00"))),
        ),
    ),
    RateSpec(
        "RC-LAKE-2026",
        "LAKE",
        Rates(
            per_mile=Decimal("2.85"),
            minimum=Decimal("300.00"),
            fuel_surcharge_pct=Decimal("21.0"),
            stop_off=Decimal("40.00"),
            detention_hourly=Decimal("65.00"),
            layover=Decimal("225.00"),
            tonu=Decimal("175.00"),
            accessorials=(("LIFTGATE", Decimal("40.00")),),
        ),
    ),
)
WAREHOUSES = (
    Site(
        "WH-N",
        "North DC (Irving Park)",
        "4100 W Irving Park Rd",
        41.9535,
        -87.7310,
        220.0,
        "docks 1-18, check in at the guard house",
        "Mo-Sa 02:00-22:00",
    ),
    Site(
        "WH-S",
        "South DC (Archer Heights)",
        "4600 S Kilbourn Ave",
        41.8105,
        -87.7350,
        220.0,
        "docks 1-24, trailers drop at row C",
        "Mo-Sa 02:00-22:00",
    ),
)
YARDS = (
    Site("YARD-N", "North truck yard", "3900 N Cicero Ave", 41.9505, -87.7475, 180.0),
    Site("YARD-S", "South truck yard", "4400 S Pulaski Rd", 41.8135, -87.7240, 180.0),
)


def build_world(seed: int, vehicles: int, orders: int) -> World:
    """The whole world for one demo run."""
    rng = random.Random(f"shipledger-demo:{seed}:world")
    taken = _Spacing()
    for site in (*WAREHOUSES, *YARDS):
        taken.add(site.lat, site.lon, site.radius_m)
    drivers = tuple(_driver(rng, i, vehicles) for i in range(vehicles))
    fleet = tuple(_vehicle(rng, i, drivers[i]) for i in range(vehicles))
    skus = _catalog(rng, orders)
    counts = _split(orders, (3, 2))
    customers: list[Customer] = []
    for (tenant, _), count in zip(ACCOUNTS, counts, strict=True):
        customers += _customers(rng, tenant, max(3, math.ceil(count * 0.7)), taken)
    home = {c.code: _nearest_warehouse(c.site) for c in customers}
    order_specs: list[OrderSpec] = []
    for (tenant, _), count in zip(ACCOUNTS, counts, strict=True):
        mine = [c for c in customers if c.tenant == tenant]
        catalog = [s for s in skus if s.tenant == tenant and s.code != "ACME-90099"]
        order_specs += _orders(rng, tenant, count, mine, catalog)
    order_specs = _with_backorder(order_specs)
    fleet = _based(fleet, order_specs, home)
    stock = _stock(rng, order_specs, skus, home)
    return World(
        seed=seed,
        accounts=ACCOUNTS,
        carriers=CARRIERS,
        rate_cards=RATE_CARDS,
        warehouses=WAREHOUSES,
        yards=YARDS,
        vehicles=fleet,
        drivers=drivers,
        customers=tuple(customers),
        skus=skus,
        orders=tuple(order_specs),
        stock=stock,
        home=home,
    )


def _split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` shared by weight, largest remainders first (ties to the earlier share)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _driver(rng: random.Random, i: int, fleet: int) -> DriverSpec:
    carrier = CARRIERS[(i // 2) % len(CARRIERS)][0]
    return DriverSpec(
        code=f"DRV-{i + 1:03d}",
        first_name=rng.choice(_FIRST_NAMES),
        last_name=rng.choice(_LAST_NAMES),
        carrier=carrier,
        heavy_week=fleet > 2 and i % 7 == 3,
    )


def _vehicle(rng: random.Random, i: int, driver: DriverSpec) -> VehicleSpec:
    big = rng.random() < 0.4
    return VehicleSpec(
        code=f"TRK-{i + 1:03d}",
        carrier=driver.carrier,
        warehouse=WAREHOUSES[i % 2].code,
        device=f"DEV-{1000 + i + 1}",
        driver=driver.code,
        kind="53 ft tractor-trailer" if big else "26 ft straight truck",
        capacity_kg=18000 if big else 7000,
        capacity_m3=95 if big else 45,
        pallets=26 if big else 14,
    )


def _based(
    fleet: tuple[VehicleSpec, ...], orders: Sequence[OrderSpec], home: dict[str, str]
) -> tuple[VehicleSpec, ...]:
    """Trucks are based at the warehouses in proportion to the orders each ships (at least one
    each), interleaved so both carriers work from both."""
    demand = [sum(1 for o in orders if home[o.ship_to_code] == w.code) for w in WAREHOUSES]
    target = [max(1, n) for n in demand]
    whole = sum(target)
    placed = [0] * len(WAREHOUSES)
    based = []
    for i, vehicle in enumerate(fleet):
        deficit = [target[k] * (i + 1) / whole - placed[k] for k in range(len(WAREHOUSES))]
        k = max(range(len(WAREHOUSES)), key=lambda k: (deficit[k], -k))
        placed[k] += 1
        based.append(replace(vehicle, warehouse=WAREHOUSES[k].code))
    return tuple(based)


def _catalog(rng: random.Random, orders: int) -> tuple[SkuSpec, ...]:
    """A catalog that grows with the business: about one sku per 25 orders a day."""
    foods = ("frozen peas", "cheddar", "yogurt", "tortillas", "salsa", "rice", "flour", "oats")
    drinks = ("sparkling water", "cola", "lager", "IPA", "cold brew", "orange juice")
    skus: list[SkuSpec] = []
    for n in range(max(24, orders // 25)):
        item = foods[n % len(foods)]
        skus.append(
            SkuSpec(
                f"ACME-{10001 + n}",
                "ACME",
                f"{item}, case of {rng.choice((6, 12, 24))}",
                Decimal(rng.randint(40, 160)) / 10,
                Decimal(rng.randint(12, 45)) / 1000,
                perishable=n % 3 != 2,
            )
        )
    for n in range(max(16, orders // 40)):
        item = drinks[n % len(drinks)]
        skus.append(
            SkuSpec(
                f"BOREAL-{20001 + n}",
                "BOREAL",
                f"{item}, case of {rng.choice((12, 24))}",
                Decimal(rng.randint(90, 180)) / 10,
                Decimal(rng.randint(15, 30)) / 1000,
                perishable=False,
            )
        )
    skus.append(
        SkuSpec(
            "ACME-90099", "ACME", "holiday gift crate", Decimal("22.0"), Decimal("0.080"), False
        )
    )
    return tuple(skus)


class _Spacing:
    """Sites already placed, bucketed on a grid, so geofences can be kept apart cheaply."""

    CELL = 0.01  # degrees (about 1.1 km north-south)

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[tuple[float, float, float]]] = {}

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return (math.floor(lat / self.CELL), math.floor(lon / self.CELL))

    def fits(self, lat: float, lon: float, radius_m: float) -> bool:
        ci, cj = self._cell(lat, lon)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                for other_lat, other_lon, other_r in self.cells.get((ci + di, cj + dj), []):
                    gap_m = km_between((lat, lon), (other_lat, other_lon)) * 1000
                    if gap_m < radius_m + other_r + 60.0:
                        return False
        return True

    def add(self, lat: float, lon: float, radius_m: float) -> None:
        self.cells.setdefault(self._cell(lat, lon), []).append((lat, lon, radius_m))


def _on_land(lat: float, lon: float) -> bool:
    for (lat0, lon0), (lat1, lon1) in pairwise(_SHORE):
        if lat0 <= lat <= lat1:
            shore = lon0 + (lon1 - lon0) * (lat - lat0) / (lat1 - lat0)
            return lon < shore - 0.004
    return False


def _address(rng: random.Random, lat: float, lon: float) -> str:
    dlat, dlon = lat - _DOWNTOWN[0], lon - _DOWNTOWN[1]
    # Chicago's grid: 800 numbers to the mile (about 8 per 0.001° north-south).
    if abs(dlat) >= abs(dlon) * 0.75:
        direction, number = ("N" if dlat > 0 else "S"), abs(dlat) * 111.0 / 1.609 * 800
    else:
        direction, number = ("W" if dlon < 0 else "E"), abs(dlon) * 83.0 / 1.609 * 800
    street = rng.choice(_STREETS)
    suffix = rng.choice(("Ave", "St", "Rd", "Blvd"))
    return f"{max(100, round(number / 2) * 2)} {direction} {street} {suffix}"


def _customers(rng: random.Random, tenant: str, count: int, taken: _Spacing) -> list[Customer]:
    kinds = (
        ("Grocers", "Market", "Deli", "Food Mart", "Bistro", "Kitchen", "Supermarket")
        if tenant == "ACME"
        else ("Tavern", "Liquors", "Pub", "Taproom", "Wine & Spirits", "Bar & Grill")
    )
    made: list[Customer] = []
    for n in range(count):
        radius = float(rng.choice((90, 120, 150, 150, 180, 200)))
        for _ in range(400):
            lat = round(rng.uniform(LAT_MIN + 0.005, LAT_MAX - 0.005), 6)
            lon = round(rng.uniform(LON_MIN + 0.005, LON_MAX - 0.005), 6)
            if _on_land(lat, lon) and taken.fits(lat, lon, radius):
                break
        else:  # the map is full at this radius: a small fence still fits somewhere
            radius = 60.0
            while True:
                lat = round(rng.uniform(LAT_MIN + 0.005, LAT_MAX - 0.005), 6)
                lon = round(rng.uniform(LON_MIN + 0.005, LON_MAX - 0.005), 6)
                if _on_land(lat, lon) and taken.fits(lat, lon, radius):
                    break
        taken.add(lat, lon, radius)
        name = f"{rng.choice(_NEIGHBOURHOODS)} {rng.choice(kinds)} #{n + 1}"
        address = _address(rng, lat, lon)
        appointment = rng.random() < 0.1
        window = (
            rng.choice(_APPOINTMENT_WINDOWS)
            if appointment
            else rng.choices(_WINDOWS, _WINDOW_WEIGHTS)[0]
        )
        liftgate = rng.random() < 0.12
        lumper = tenant == "ACME" and kinds[n % len(kinds)] == "Supermarket" and rng.random() < 0.3
        notes = "no dock: liftgate delivery" if liftgate else rng.choice(("", "rear alley dock"))
        opening = (
            f"Mo-Sa {window[0][0]:02d}:{window[0][1]:02d}-{window[1][0]:02d}:{window[1][1]:02d}"
        )
        made.append(
            Customer(
                tenant=tenant,
                site=Site(
                    code=ship_to_code(tenant, name, address),
                    name=name,
                    address=address,
                    lat=lat,
                    lon=lon,
                    radius_m=radius,
                    dock_notes=notes,
                    opening_hours=opening,
                    appointment_required=appointment,
                    owner=tenant,
                ),
                window=window,
                liftgate=liftgate,
                lumper=lumper,
            )
        )
    return made


def _nearest_warehouse(site: Site) -> str:
    return min(WAREHOUSES, key=lambda w: (km_between(w.point, site.point), w.code)).code


def _orders(
    rng: random.Random,
    tenant: str,
    count: int,
    customers: Sequence[Customer],
    catalog: Sequence[SkuSpec],
) -> list[OrderSpec]:
    # A few customers order much more often than the rest (a long tail, as in real life).
    weights = [1.0 / (1 + (i % 9)) for i in range(len(customers))]
    orders = []
    for n in range(count):
        customer = rng.choices(customers, weights)[0]
        picked = rng.sample(list(catalog), k=rng.choices((1, 2, 3, 4), (4, 4, 2, 1))[0])
        lines = tuple(
            (sku.code, rng.choice((2, 4, 5, 6, 8, 10, 12, 15, 20, 24)))
            for sku in sorted(picked, key=lambda s: s.code)
        )
        level = (
            "appointment"
            if customer.site.appointment_required
            else rng.choices(("standard", "expedited"), (9, 1))[0]
        )
        notes = rng.choice(("", "", "", "call 15 min ahead", "fragile: glass", "keep upright"))
        orders.append(
            OrderSpec(
                reference=f"PO-{tenant}-{n + 1:05d}",
                tenant=tenant,
                customer=customer,
                lines=lines,
                service_minutes=rng.choice((10, 15, 15, 20, 25, 30)),
                service_level=level,
                notes=notes,
            )
        )
    return orders


def _with_backorder(orders: list[OrderSpec]) -> list[OrderSpec]:
    """The last ACME order also asks for a gift crate the warehouses barely stock."""
    for i in range(len(orders) - 1, -1, -1):
        order = orders[i]
        if order.tenant == "ACME":
            orders[i] = OrderSpec(
                order.reference,
                order.tenant,
                order.customer,
                (*order.lines, ("ACME-90099", 12)),
                order.service_minutes,
                order.service_level,
                order.notes,
            )
            break
    return orders


def _stock(
    rng: random.Random,
    orders: Sequence[OrderSpec],
    skus: Sequence[SkuSpec],
    home: dict[str, str],
) -> tuple[StockLot, ...]:
    demand: dict[tuple[str, str], int] = {}
    for order in orders:
        warehouse = home[order.ship_to_code]
        for code, quantity in order.lines:
            demand[(warehouse, code)] = demand.get((warehouse, code), 0) + quantity
    lots: list[StockLot] = []
    evening = local((15, 0), DAY - timedelta(days=1))
    # Inbound trucks unload from 15:00 until about 01:00; each lot is booked as it is put away.
    step = timedelta(seconds=max(3, 36_000 // (len(WAREHOUSES) * len(skus)) // 3 * 3))
    n = 0
    for warehouse in (w.code for w in WAREHOUSES):
        for sku in skus:
            received = evening + step * n
            n += 1
            if sku.code == "ACME-90099":
                lots.append(StockLot(warehouse, sku.code, "GC-2611", 2, None, received))
                continue
            need = demand.get((warehouse, sku.code), 0)
            first = math.ceil(need * 0.6) + rng.randint(10, 30)
            second = math.ceil(need * 0.7) + rng.randint(20, 60)
            tag = f"{sku.code.split('-')[1]}{warehouse[-1]}"
            if sku.perishable:
                lots.append(
                    StockLot(
                        warehouse,
                        sku.code,
                        f"L{tag}-A",
                        first,
                        DAY + timedelta(days=rng.randint(4, 9)),
                        received,
                    )
                )
                lots.append(
                    StockLot(
                        warehouse,
                        sku.code,
                        f"L{tag}-B",
                        second,
                        DAY + timedelta(days=rng.randint(20, 40)),
                        received + step / 3,
                    )
                )
                if rng.random() < 0.15:  # an old lot still on the shelf: past its date
                    lots.append(
                        StockLot(
                            warehouse,
                            sku.code,
                            f"L{tag}-X",
                            rng.randint(6, 30),
                            DAY - timedelta(days=1),
                            received + step * 2 / 3,
                        )
                    )
            else:
                lots.append(
                    StockLot(warehouse, sku.code, f"L{tag}", first + second, None, received)
                )
    return tuple(lots)
