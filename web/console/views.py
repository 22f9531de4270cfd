"""Queue, ticket page, actions, corrections, 研判 dashboard and exports."""

from __future__ import annotations

import io
import time
from datetime import date, datetime, timedelta

from flask import abort, flash, g, redirect, render_template, request, send_file, url_for

from delivery.outbox import enqueue_resend
from handlers.parsing import taxonomy
from models import MediaFile, MediaStatus, audit, db, node_by_code, utcnow
from ops.storage import media_storage
from reports.ledger import corrected_rows, corrections_csv, dashboard, ledger_rows, ledger_xlsx
from reports.non_demands import non_demand_report
from web.console import bp, login_required
from web.inputs import MAX_YEAR, MIN_YEAR
from workflow.deliveries import resend
from workflow.policy import READ_ONLY_ROLES, ActionRefused, area_codes, export_filter, may_export
from workflow.queue import (
    ACTION_LABELS,
    STAFF_STATUS_LABELS,
    URGENCY_LABELS,
    QueueFilters,
    local_day_start,
    review_count,
    search_queue,
    ticket_page,
)
from workflow.rules.sla import LOCAL_TZ
from workflow.scope import home_node, in_scope, region_choices
from workflow.service import act_on_ticket, load_visible
from workflow.service import correct as correct_ticket

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
    page = search_queue(g.actor, filters, utcnow())
    body = render_template(
        "console/queue.html",
        page=page,
        filters=filters,
        statuses=_status_choices(),
        categories=taxonomy().names,
        urgencies=URGENCY_LABELS,
        grids=region_choices(g.user, ("grid",)),
        home=home_node(g.user),
        may_act=g.user.role not in READ_ONLY_ROLES,
        review_count=review_count(g.actor),
    )
    elapsed = (time.perf_counter() - started) * 1000
    return body, 200, {"Server-Timing": f"queue;dur={elapsed:.1f}"}


def _page_or_404(ticket_id: int) -> dict:
    try:
        ticket = load_visible(g.actor, ticket_id)
    except ActionRefused:
        abort(404)
    return ticket_page(ticket, g.actor, utcnow())


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
    node = (form.get("node") or "").strip()[:32]
    if name == "assign":
        params["node"] = node
        if (form.get("member") or "").strip():
            params["member"] = form["member"].strip()
    elif name in ("sign", "return") and node:
        params["node"] = node  # a summoned co-handler signing or returning its part
    elif name == "summon":
        params["handlers"] = [{"node": node, "role": form.get("role") if form.get("role") in ("lead", "co") else "co"}]
    elif name == "merge":
        params["into"] = (form.get("into") or "").strip()[:32]
    elif name == "split":
        params["reporter"] = (form.get("reporter") or "").strip()
    return params


@bp.post("/tickets/<int:ticket_id>/actions")
@login_required
def act(ticket_id: int):
    name = (request.form.get("action") or "").strip()[:32]
    note = (request.form.get("note") or "").strip()[:2000] or None
    try:
        act_on_ticket(g.actor, ticket_id, name, note, _action_params(name, request.form), utcnow())
    except ActionRefused as refused:
        if refused.status == 404:
            abort(404)
        if refused.status == 403:
            abort(403, description=refused.reason)
        return _render_ticket(_page_or_404(ticket_id), refused.status, refused.reason)
    flash(f"已{ACTION_LABELS.get(name, name)}", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id) + "#timeline", 303)


@bp.post("/tickets/<int:ticket_id>/notifications/<int:outbox_id>/resend")
@login_required
def resend_notification(ticket_id: int, outbox_id: int):
    """重新发送: a message that did not reach the resident goes out again, by WeChat's rules."""
    try:
        ticket = load_visible(g.actor, ticket_id, for_update=True)
        resend(g.actor, ticket, outbox_id, utcnow())
    except ActionRefused as refused:
        db.session.rollback()
        if refused.status in (403, 404):
            abort(refused.status, description=refused.reason)
        return _render_ticket(_page_or_404(ticket_id), refused.status, refused.reason)
    db.session.commit()
    enqueue_resend(outbox_id)
    flash("已重新发送，结果见时间线", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id) + "#notifications", 303)


@bp.get("/media/<int:media_id>")
@login_required
def media_file(media_id: int):
    """A stored image, voice or video, for staff who may see its ticket."""
    media = db.session.get(MediaFile, media_id)
    if media is None or media.status != MediaStatus.STORED or not media.ticket_id:
        abort(404)
    try:
        load_visible(g.actor, media.ticket_id)
    except ActionRefused:
        abort(404)
    data = media_storage(media.storage).get(media.storage_key)
    response = send_file(
        io.BytesIO(data), mimetype=media.content_type, download_name=media.storage_key.rsplit("/", 1)[-1]
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.post("/tickets/<int:ticket_id>/correct")
@login_required
def correct(ticket_id: int):
    try:
        correct_ticket(g.actor, ticket_id, request.form, taxonomy(), utcnow(), note=request.form.get("note"))
    except ActionRefused as refused:
        if refused.status == 404:
            abort(404)
        if refused.status == 403:
            abort(403, description=refused.reason)
        return _render_ticket(_page_or_404(ticket_id), refused.status, refused.reason)
    flash("已更正，更正记录已写入时间线", "ok")
    return redirect(url_for("console.ticket", ticket_id=ticket_id) + "#timeline", 303)


# --- 研判 and exports ----------------------------------------------------------------------------------


def _period(args) -> tuple[datetime, datetime, date, date, str | None]:
    """[start, end) from ?from=YYYY-MM-DD&to=YYYY-MM-DD (local days, both inclusive); default 30 days."""
    today = utcnow().astimezone(LOCAL_TZ).date()
    error = None
    try:
        last = date.fromisoformat(args["to"].strip()) if args.get("to") else today
        first = (
            date.fromisoformat(args["from"].strip())
            if args.get("from")
            else last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        )
        if not (MIN_YEAR <= first.year <= MAX_YEAR and MIN_YEAR <= last.year <= MAX_YEAR):
            raise ValueError("out of range")
    except (ValueError, OverflowError):
        last, first = today, today - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        error = f"日期格式应为 YYYY-MM-DD，年份在 {MIN_YEAR}–{MAX_YEAR} 之间"
    if first > last:
        first, last, error = last, first, "开始日期晚于结束日期，已对调"
    if (last - first).days >= MAX_PERIOD_DAYS:
        first, error = last - timedelta(days=MAX_PERIOD_DAYS - 1), f"时间段最长 {MAX_PERIOD_DAYS} 天"
    return local_day_start(first), local_day_start(last + timedelta(days=1)), first, last, error


def _region(args) -> str:
    code = (args.get("region") or "").strip()[:32] or g.user.region_code
    if not may_export(g.actor, code):
        abort(403, description="该区域不在您的管辖范围内")
    return code


@bp.get("/dashboard")
@login_required
def dashboard_page():
    code = _region(request.args)
    start, end, first, last, error = _period(request.args)
    stats = dashboard(code, start, end, utcnow(), hidden=export_filter(g.actor))
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
    data = ledger_xlsx(title, ledger_rows(code, start, end, utcnow(), hidden=export_filter(g.actor)))
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
    if not may_export(g.actor, g.user.region_code):
        abort(403, description="该区域不在您的管辖范围内")
    rows = corrected_rows(
        area_codes(g.actor), with_subcategory=request.args.get("level") == "2", hidden=export_filter(g.actor)
    )
    audit(f"staff:{g.user.username}", "export.corrections", f"region:{g.user.region_code}", rows=len(rows))
    db.session.commit()
    return send_file(
        io.BytesIO(corrections_csv(rows).encode("utf-8")),
        mimetype="text/csv; charset=utf-8",
        as_attachment=True,
        download_name=f"corrections_{g.user.region_code}.csv",
    )


@bp.get("/non-demands")
@login_required
def non_demands():
    """What the demand gate answered without a ticket, counted by kind (demand/gate.py)."""
    start, end, first, last, error = _period(request.args)
    report = non_demand_report(g.user, start, end)
    return render_template("console/non_demands.html", r=report, first=first, last=last, error=error)


@bp.get("/export")
@login_required
def exports():
    _, _, first, last, _ = _period(request.args)
    regions = [n for n in region_choices(g.user) if n.tier != "grid"] or region_choices(g.user)
    return render_template("console/exports.html", first=first, last=last, regions=regions)
