"""Texts the demand gate stops (demand/gate.py): a short reply, no ticket, and a record staff can count.

The verdict is kept on the inbound row (`gate`), so the console lists and counts them; a counter in
/metrics follows them live. A clarifying dialog stays open: its question is repeated after the reply.
"""

from __future__ import annotations

from demand.gate import NonDemand, screen
from ops import metrics
from workflow import replies

__all__ = ["NonDemand", "decline", "screen"]


def decline(intake, kind: NonDemand) -> None:
    """Answer a non-demand and record why no ticket was made."""
    intake.inbound.gate = str(kind)
    metrics.incr("non_demands", str(kind))
    text = replies.NON_DEMAND_REPLIES[str(kind)]
    resident = intake.resident
    if resident.pending_ticket_id and resident.pending_until and resident.pending_until >= intake.now:
        question = replies.ASK.get(resident.pending_field or "")
        if question:
            text = f"{text}\n{question}"
    intake.reply(text, kind="gate")
