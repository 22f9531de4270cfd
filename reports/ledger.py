"""研判 and 台账: the dashboard's lists and trends beside reports.stats.region_stats, the period's ledger
as an .xlsx file (personal data always masked), and the staff corrections as `text,label` rows for
`train-classifier`."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy.orm import selectinload

from models import InboundMessage, MediaFile, MediaStatus, Ticket, TicketEvent, db, subtree_codes
from ops.privacy import csv_cell, mask_name, mask_phone, mask_text
from reports.stats import region_stats
from workflow.queue import (
    CHANNEL_LABELS,
    RUNNING,
    STAFF_STATUS_LABELS,
    URGENCY_LABELS,
    local,
    next_due_expr,
    time_left,
)
from workflow.rules.sla import LOCAL_TZ
from workflow.scope import node_names

LIST_LIMIT = 20
SATISFACTION_LABELS = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}


def _in_region(codes: list[str], hidden=None):
    """Tickets of the subtree; `hidden` (workflow.policy.export_filter) names what the viewer may not see."""
    region = db.or_(Ticket.grid_code.in_(codes), Ticket.owner_code.in_(codes))
    if hidden is None:
        return region
    return db.and_(region, db.or_(Ticket.category.is_(None), db.not_(hidden)))


def dashboard(code: str, start: datetime, end: datetime, now: datetime, hidden=None) -> dict | None:
    """region_stats plus trends, all categories, overdue and escalated lists and hot spots."""
    stats = region_stats(code, start, end, now)
    if stats is None:
        return None
    codes = subtree_codes(code)
    period = (
        Ticket.created_at >= start,
        Ticket.created_at < end,
        Ticket.merged_into_id.is_(None),
        _in_region(codes, hidden),
    )
    moments = db.session.execute(db.select(Ticket.created_at, Ticket.resolved_at).filter(*period)).all()
    stats["trend"] = _trend(moments, start, end)
    categories = db.session.execute(
        db.select(Ticket.category, db.func.count()).filter(*period).group_by(Ticket.category)
    ).all()
    counted = sorted(((c or "未分类", n) for c, n in categories), key=lambda row: (-row[1], row[0]))
    stats["categories"] = [{"name": name, "count": n} for name, n in counted]
    due = next_due_expr()
    overdue = (
        db.session.execute(
            db.select(Ticket)
            .filter(_in_region(codes, hidden), Ticket.status.in_([str(s) for s in RUNNING]), due < now)
            .order_by(due, Ticket.id)
            .limit(LIST_LIMIT)
        )
        .scalars()
        .all()
    )
    escalated = (
        db.session.execute(
            db.select(Ticket)
            .filter(*period, Ticket.escalation_level > 0)
            .order_by(Ticket.escalation_level.desc(), Ticket.id.desc())
            .limit(LIST_LIMIT)
        )
        .scalars()
        .all()
    )
    listed = [*overdue, *escalated]
    names = node_names([t.owner_code for t in listed] + [t.grid_code for t in listed])
    stats["overdue_list"] = [_brief(t, names, now) for t in overdue]
    stats["escalated_list"] = [_brief(t, names, now) for t in escalated]
    stats["hot_spots"] = _hot_spots(period)
    return stats


def _brief(ticket: Ticket, names: dict[str, str], now: datetime) -> dict:
    due = ticket.sign_due_at if ticket.status == "assigned" and ticket.sign_due_at else ticket.due_at
    return {
        "id": ticket.id,
        "number": ticket.number,
        "category": ticket.category or "未分类",
        "status": STAFF_STATUS_LABELS.get(ticket.status, ticket.status),
        "owner": names.get(ticket.owner_code, ticket.owner_code or ""),
        "grid": names.get(ticket.grid_code, ticket.grid_code or ""),
        "escalation_level": ticket.escalation_level,
        "left": time_left(due, now)[0] if ticket.status in RUNNING else "",
    }


def _trend(moments, start: datetime, end: datetime) -> list[dict]:
    """Received and resolved per local day (per week beyond 92 days)."""
    first, last = start.astimezone(LOCAL_TZ).date(), (end - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
    step = 1 if (last - first).days <= 92 else 7
    buckets = []
    day = first
    while day <= last:
        buckets.append(day)
        day += timedelta(days=step)
    received: Counter = Counter()
    resolved: Counter = Counter()

    def bucket(moment: datetime):
        return first + timedelta(days=((moment.astimezone(LOCAL_TZ).date() - first).days // step) * step)

    for created, done in moments:
        received[bucket(created)] += 1
        if done is not None and start <= done < end:
            resolved[bucket(done)] += 1
    return [{"day": d.isoformat(), "received": received[d], "resolved": resolved[d]} for d in buckets]


def _hot_spots(period) -> list[dict]:
    """Places (or grids) and categories that recur in the period: candidates for proactive work."""
    rows = db.session.execute(
        db.select(Ticket.place, Ticket.grid_code, Ticket.category, db.func.count())
        .filter(*period)
        .group_by(Ticket.place, Ticket.grid_code, Ticket.category)
        .having(db.func.count() >= 2)
        .order_by(db.func.count().desc())
        .limit(LIST_LIMIT)
    ).all()
    names = node_names([grid for _, grid, _, _ in rows])
    return [
        {"place": place or names.get(grid, grid or "未定位"), "category": category or "未分类", "count": count}
        for place, grid, category, count in rows
    ]


# --- the ledger (台账) --------------------------------------------------------------------------------

LEDGER_COLUMNS = (
    ("工单号", 16),
    ("受理时间", 17),
    ("渠道", 8),
    ("类别", 14),
    ("子类", 14),
    ("紧急程度", 8),
    ("网格", 18),
    ("承办单位", 18),
    ("状态", 12),
    ("诉求内容", 60),
    ("地点", 24),
    ("反映人", 10),
    ("联系电话", 14),
    ("签收时间", 17),
    ("办结时间", 17),
    ("办结时限", 17),
    ("是否超期", 8),
    ("提级次数", 8),
    ("满意度", 10),
    ("附件数", 8),
)


def ledger_rows(code: str, start: datetime, end: datetime, now: datetime, hidden=None):
    """One row per ticket received in [start, end) in the subtree, personal data masked."""
    codes = subtree_codes(code)
    query = (
        db.select(Ticket)
        .filter(Ticket.created_at >= start, Ticket.created_at < end, _in_region(codes, hidden))
        .order_by(Ticket.created_at, Ticket.id)
    )
    names = node_names(codes)
    media_counts = _media_counts(start, end, codes)
    for t in db.session.execute(
        query.options(selectinload(Ticket.reporters)).execution_options(yield_per=500)
    ).scalars():
        reporter = t.reporters[0] if t.reporters else None
        reporter_names = [r.name for r in t.reporters if r.name]
        overdue = (t.resolved_at or t.closed_at or now) > t.due_at if t.due_at and t.status != "cancelled" else False
        yield (
            t.number,
            local(t.created_at),
            CHANNEL_LABELS.get(t.channel, t.channel),
            t.category or "",
            t.subcategory or "",
            URGENCY_LABELS.get(t.urgency, t.urgency),
            names.get(t.grid_code, t.grid_code or ""),
            names.get(t.owner_code, t.owner_code or ""),
            STAFF_STATUS_LABELS.get(t.status, t.status),
            mask_text(t.description or "", names=reporter_names),
            mask_text(t.location_text or t.place or "", names=reporter_names),
            mask_name(reporter.name) if reporter and reporter.name else "",
            mask_phone(reporter.phone) if reporter and reporter.phone else "",
            local(t.signed_at),
            local(t.resolved_at),
            local(t.due_at),
            "是" if overdue else "否",
            t.escalation_level,
            SATISFACTION_LABELS.get(t.satisfaction or "", ""),
            media_counts.get(t.id, 0),
        )


def _media_counts(start: datetime, end: datetime, codes: list[str]) -> dict[int, int]:
    """Stored images, voice and video per ticket of the period (what residents sent as evidence)."""
    rows = db.session.execute(
        db.select(MediaFile.ticket_id, db.func.count())
        .join(Ticket, Ticket.id == MediaFile.ticket_id)
        .filter(
            Ticket.created_at >= start,
            Ticket.created_at < end,
            _in_region(codes),
            MediaFile.status == MediaStatus.STORED,
        )
        .group_by(MediaFile.ticket_id)
    ).all()
    return {ticket_id: count for ticket_id, count in rows}


def ledger_xlsx(title: str, rows) -> bytes:
    """The ledger as an .xlsx workbook. Text cells are forced to text, so "=…" never becomes a formula."""
    from openpyxl import Workbook  # here, not at import: openpyxl pulls in numpy (~20 MiB in every process)

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("台账")
    for index, (_, width) in enumerate(LEDGER_COLUMNS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.append([_text_cell(sheet, title)])
    sheet.append([_text_cell(sheet, name) for name, _ in LEDGER_COLUMNS])
    for row in rows:
        sheet.append([_text_cell(sheet, value) if isinstance(value, str) else value for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _text_cell(sheet, value: str):
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"
    return cell


# --- corrections for train-classifier -----------------------------------------------------------------


def corrected_rows(codes: list[str], with_subcategory: bool = False, hidden=None) -> list[tuple[str, str]]:
    """(text, label) for every ticket in the subtree that staff corrected: the words the parser saw
    (masked), labelled with the corrected first-level category, the label the shipped training data
    uses ("一级/二级" with `with_subcategory` when a subcategory is set)."""
    ids = (
        db.session.execute(
            db.select(TicketEvent.ticket_id)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .filter(TicketEvent.kind == "corrected", _in_region(codes, hidden))
            .distinct()
            .order_by(TicketEvent.ticket_id)
        )
        .scalars()
        .all()
    )
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        firsts: dict[int, str] = {}
        for ticket_id, content in db.session.execute(
            db.select(InboundMessage.ticket_id, InboundMessage.content)
            .filter(InboundMessage.ticket_id.in_(chunk), InboundMessage.content.is_not(None))
            .order_by(InboundMessage.id)
        ):
            if (content or "").strip():
                firsts.setdefault(ticket_id, content)
        tickets = db.session.execute(
            db.select(Ticket).options(selectinload(Ticket.reporters)).filter(Ticket.id.in_(chunk)).order_by(Ticket.id)
        ).scalars()
        for ticket in tickets:
            if not ticket.category:
                continue
            text = firsts.get(ticket.id) or (ticket.fields or {}).get("original_text") or ticket.description or ""
            text = " ".join(mask_text(text, names=[r.name for r in ticket.reporters if r.name]).split())
            if text:
                label = ticket.category
                if with_subcategory and ticket.subcategory:
                    label = f"{ticket.category}/{ticket.subcategory}"
                rows.append((text, label))
    return rows


def corrections_csv(rows: list[tuple[str, str]]) -> str:
    """text,label rows; a cell a spreadsheet would run as a formula (=, +, -, @ first) is neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([csv_cell(text), csv_cell(label)] for text, label in rows)
    return out.getvalue()
