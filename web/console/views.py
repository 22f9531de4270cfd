"""Queue, ticket page, actions, corrections, 研判 dashboard and exports."""

from __future__ import annotations

import io
import time
from datetime import date, datetime, timedelta

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for

from delivery.outbox import enqueue_delivery
from handlers.parsing import taxonomy
from models import audit, db, node_by_code, utcnow
from reports.ledger import corrected_rows, corrections_csv, dashboard, ledger_rows, ledger_xlsx
from web.console import bp, login_required
from workflow.queue import (
    ACTION_LABELS,
    STAFF_STATUS_LABELS,
    URGENCY_LABELS,
    QueueFilters,
    correct_ticket,
    local_day_start,
    review_count,
    search_queue,
    staff_action,
    ticket_page,
)
from workflow.rules.sla import LOCAL_TZ
from workflow.scope import home_node, in_scope, region_choices, scope_codes, visible_ticket
from workflow.transitions import ActionRefused

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366


def _status_choices() -> list[tuple[str, str]]:
    groups = [("open", "办理中（全部）"), ("done", "已办结/已结案"), ("all", "全部状态")]
    return groups + [(str(status), label) for status, label in STAFF_STATUS_LABELS.items()]


@bp.get("/")
@login_required
def queue():
    started = time.perf_counter()
    filters = QueueFilters.from_args(request.args)
    if filters.grid and not in_scope(g.user, filters.grid):
        filters.grid = ""
    page = search_queue(g.user, filters, utcnow())
    body = render_template(
        "console/queue.html",
        page=page,
        filters=filters,
        statuses=_status_choices(),
        categories=taxonomy().names,
        urgencies=URGENCY_LABELS,
        grids=region_choices(g.user, ("grid",)),
        home=home_node(g.user),
        review_count=review_count(g.user),
    )
    elapsed = (time.perf_counter() - started) * 1000
    return body, 200, {"Server-Timing": f"queue;dur={elapsed:.1f}"}


def _page_or_404(ticket_id: int) -> dict:
    ticket = visible_ticket(g.user, ticket_id)
    if ticket is None:
        abort(404)
    return ticket_page(ticket, g.user, utcnow())


def _render_ticket(view: dict, status: int = 200, error: str | None = None):
    tax = taxonomy()
    return (
        render_template(
            "console/ticket.html",
            v=view,
            t=view["ticket"],
            error=error,
            action_labels=ACTION_LABELS,
            categories=tax.names,
            subcategories={name: tax.subcategories(name) for name in tax.names},
            urgencies=URGENCY_LABELS,
            grids=region_choices(g.user, ("grid",)) if view["may_correct"] else [],
            nodes=region_choices(g.user) if view["actions"] else [],
        ),
        status,
    )


@bp.get("/tickets/<int:ticket_id>")
@login_required
def ticket(ticket_id: int):
    return _render_ticket(_page_or_404(ticket_id))


def _action_params(name: str, form) -> dict:
    params: dict = {}
    node = (form.get("node") or "").strip()
    if name == "assign":
        params["node"] = node
        if (form.get("member") or "").strip():
            params["member"] = form["member"].strip()
    elif name in ("sign", "return") and node:
        params["node"] = node  # a summoned co-handler signing or returning its part
    elif name == "summon":
        params["handlers"] = [{"node": node, "role": form.get("role") if form.get("role") in ("lead", "co") else "co"}]
    elif name == "merge":
        params["into"] = (form.get("into") or "").strip()
    return params


@bp.post("/tickets/<int:ticket_id>/actions")
@login_required
def act(ticket_id: int):
    name = (request.form.get("action") or "").strip()
    note = (request.form.get("note") or "").strip()[:2000] or None
    try:
        _, outbox_ids = staff_action(g.user, ticket_id, name, note, _action_params(name, request.form), utcnow())
    except ActionRefused as refused:
        db.session.rollback()
        if refused.status == 404:
            abort(404)
        if refused.status == 403:
            abort(403, description=refused.reason)
        return _render_ticket(_page_or_404(ticket_id), refused.status, refused.reason)
    db.session.commit()
    for outbox_id in outbox_ids:
        enqueue_delivery(outbox_id)
    flash(f"已{ACTION_LABELS.get(name, name)}", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id) + "#timeline", 303)


@bp.post("/tickets/<int:ticket_id>/correct")
@login_required
def correct(ticket_id: int):
    ticket = visible_ticket(g.user, ticket_id, for_update=True)
    if ticket is None:
        abort(404)
    try:
        correct_ticket(ticket, g.user, request.form, taxonomy(), utcnow(), note=request.form.get("note"))
    except ActionRefused as refused:
        db.session.rollback()
        if refused.status == 403:
            abort(403, description=refused.reason)
        return _render_ticket(_page_or_404(ticket_id), refused.status, refused.reason)
    db.session.commit()
    flash("已更正，更正记录已写入时间线", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id) + "#timeline", 303)


# --- 研判 and exports ----------------------------------------------------------------------------------


def _period(args) -> tuple[datetime, datetime, date, date, str | None]:
    """[start, end) from ?from=YYYY-MM-DD&to=YYYY-MM-DD (local days, both inclusive); default 30 days."""
    today = utcnow().astimezone(LOCAL_TZ).date()
    error = None
    try:
        last = date.fromisoformat(args["to"]) if args.get("to") else today
        first = date.fromisoformat(args["from"]) if args.get("from") else last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    except ValueError:
        last, first, error = today, today - timedelta(days=DEFAULT_PERIOD_DAYS - 1), "日期格式应为 YYYY-MM-DD"
    if first > last:
        first, last, error = last, first, "开始日期晚于结束日期，已对调"
    if (last - first).days >= MAX_PERIOD_DAYS:
        first, error = last - timedelta(days=MAX_PERIOD_DAYS - 1), f"时间段最长 {MAX_PERIOD_DAYS} 天"
    return local_day_start(first), local_day_start(last + timedelta(days=1)), first, last, error


def _region(args) -> str:
    code = (args.get("region") or "").strip() or g.user.region_code
    if not in_scope(g.user, code):
        abort(403, description="该区域不在您的管辖范围内")
    return code


@bp.get("/dashboard")
@login_required
def dashboard_page():
    code = _region(request.args)
    start, end, first, last, error = _period(request.args)
    stats = dashboard(code, start, end, utcnow())
    if stats is None:
        abort(404)
    regions = [n for n in region_choices(g.user) if n.tier != "grid"] or region_choices(g.user)
    return render_template(
        "console/dashboard.html", s=stats, code=code, first=first, last=last, error=error, regions=regions
    )


@bp.get("/export/ledger.xlsx")
@login_required
def export_ledger():
    code = _region(request.args)
    start, end, first, last, _ = _period(request.args)
    node = node_by_code(code)
    title = f"{node.name} 工单台账 {first.isoformat()} 至 {last.isoformat()}（个人信息已脱敏）"
    data = ledger_xlsx(title, ledger_rows(code, start, end, utcnow()))
    audit(f"staff:{g.user.username}", "export.ledger", f"region:{code}", start=first.isoformat(), end=last.isoformat())
    db.session.commit()
    return send_file(
        io.BytesIO(data),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=f"台账_{code}_{first:%Y%m%d}-{last:%Y%m%d}.xlsx",
    )


@bp.get("/export/corrections.csv")
@login_required
def export_corrections():
    rows = corrected_rows(scope_codes(g.user), with_subcategory=request.args.get("level") == "2")
    audit(f"staff:{g.user.username}", "export.corrections", f"region:{g.user.region_code}", rows=len(rows))
    db.session.commit()
    return send_file(
        io.BytesIO(corrections_csv(rows).encode("utf-8")),
        mimetype="text/csv; charset=utf-8",
        as_attachment=True,
        download_name=f"corrections_{g.user.region_code}.csv",
    )


@bp.get("/export")
@login_required
def exports():
    _, _, first, last, _ = _period(request.args)
    regions = [n for n in region_choices(g.user) if n.tier != "grid"] or region_choices(g.user)
    return render_template("console/exports.html", first=first, last=last, regions=regions)
