"""EDI 214 carrier status messages (X12 text) → stop facts with `source=edi`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from api.deps import Svc, caller_for, require
from api.keys import Principal, Role
from api.routes.common import Recorded, raw_text
from ledger.edi import parse_214
from ledger.events import Source

router = APIRouter(tags=["edi"])
Sender = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.CARRIER))]


@router.post("/edi/214", response_model=Recorded, status_code=201)
async def post_214(
    request: Request,
    services: Svc,
    who: Sender,
    _body: Annotated[str, Body(media_type="text/plain", description="an X12 214 document")] = "",
) -> Recorded:
    """Record an EDI 214: AT7 codes map to stop facts (X3/X8 arrived pickup, AF departed
    pickup, X1/X5 arrived delivery, D1 delivered, CD departed delivery, AH/AP attempted, A7
    refused, X2/AG ETA) or exceptions (SD delayed, A9 damaged); an unknown code refuses the
    document naming its segment, and nothing is written."""
    messages = parse_214(await raw_text(request))
    carrier = who.tenant if who.role is Role.CARRIER else None
    position = services.ledger.record_edi_214(
        caller_for(who, request, Source.EDI), messages, carrier=carrier
    )
    return Recorded(position=position)
