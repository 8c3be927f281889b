"""`shipledger demo`: one realistic operating day, simulated end to end on a real store.

    world.py      the seeded world: shippers, carriers, fleet, docks, catalog, stock, orders
    documents.py  what partners send, as text: orders CSV, X12 EDI 214
    planning.py   the morning plan: planner requests per shipper and warehouse → routes
    drive.py      a truck's day: fixes every 30 s and ELD duty changes
    simulate.py   the agenda that plays the day against the ledger under a simulated clock
    report.py     the report, read back from the views
    command.py    the CLI command (`add_parser(commands)`)

Deterministic: the same seed on an empty store records the same events (apart from the
library's wall-clock `recorded_at`) and prints the same report.
"""

from api.demo.command import add_parser, cmd_demo, run_demo
from api.demo.simulate import Options

__all__ = ["Options", "add_parser", "cmd_demo", "run_demo"]
