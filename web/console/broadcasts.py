"""The broadcast composer: audience picker over the region tree, the audience count before sending, a live
progress bar while it sends and the delivery report after. Works without JavaScript (plain form posts);
console.js adds the live count and the polling progress bar."""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from broadcasts import service
from broadcasts.compose import (
    CHANNEL_LABELS,
    PUBLISHER_ROLES,
    BroadcastError,
    failures,
    progress,
)
from models import Broadcast, utcnow
from models.broadcast import FINAL_BROADCAST_STATUSES
from web.console import bp, login_required
from workflow.scope import node_names, region_choices

AUDIENCE_ROLES = {
    "resident": "居民（公众号关注者）",
    "grid_officer": "网格员",
    "info_officer": "信息员",
    "party_leader": "党小组长",
    "cadre": "村（社区）干部",
    "police": "民警",
    "staff": "工作人员",
    "department": "职能部门",
}
STATUS_LABELS = {"planning": "准备中", "sending": "发送中", "done": "已完成", "cancelled": "已取消"}
SKIP_LABELS = {
    "unsubscribed": "已取消关注",
    "opted_out": "已退订通知",
    "over_limit": "本月群发次数已满",
    "inactive": "成员已停用",
    "no_wecom_userid": "无企业微信账号",
}


def _request_data(form, dry_run: bool) -> dict:
    tags = [t.strip() for t in (form.get("tags") or "").replace("，", ",").split(",") if t.strip()]
    return {
        "title": form.get("title") or "",
        "body": form.get("body") or "",
        "link": form.get("link") or "",
        "audience": {"regions": form.getlist("regions"), "roles": form.getlist("roles"), "tags": tags},
        "channels": form.getlist("channels") or None,
        "skip_over_limit": form.get("skip_over_limit") in ("1", "on", "true"),
        "dry_run": dry_run,
    }


def _submit(form, dry_run: bool) -> service.Submission:
    limit = int(current_app.config["BROADCAST_MONTHLY_LIMIT"])
    return service.submit(_request_data(form, dry_run), g.user, utcnow(), limit)


def _render_composer(status: int = 200, error: str | None = None, counts: dict | None = None):
    return (
        render_template(
            "console/broadcast_new.html",
            nodes=region_choices(g.user),
            roles=AUDIENCE_ROLES,
            channels=CHANNEL_LABELS,
            may_publish=g.user.role in PUBLISHER_ROLES,
            form=request.form,
            error=error,
            counts=counts,
            skip_labels=SKIP_LABELS,
        ),
        status,
    )


@bp.get("/broadcasts/new")
@login_required
def broadcast_new():
    return _render_composer()


@bp.post("/broadcasts/count")
@login_required
def broadcast_count():
    """The audience count for the form as it stands (console.js calls it on every change)."""
    try:
        submitted = _submit(request.form, dry_run=True)
    except BroadcastError as exc:
        return exc.as_dict(), exc.status
    return {**submitted.summary(), "labels": CHANNEL_LABELS}


@bp.post("/broadcasts")
@login_required
def broadcast_create():
    dry_run = request.form.get("intent") == "count"
    try:
        submitted = _submit(request.form, dry_run=dry_run)
    except BroadcastError as exc:
        return _render_composer(exc.status, exc.message, exc.details.get("counts"))
    broadcast = submitted.broadcast
    if broadcast is None:
        return _render_composer(counts=submitted.counts)
    flash("通知已提交，正在发送", "ok")
    return redirect(url_for("console.broadcast_show", broadcast_id=broadcast.id), 303)


def _visible(broadcast_id: int) -> Broadcast:
    broadcast = service.visible_broadcast(broadcast_id, g.user, utcnow())
    if broadcast is None:
        abort(404)
    return broadcast


def _report(broadcast: Broadcast) -> dict:
    return {
        "id": broadcast.id,
        "status": broadcast.status,
        "status_label": STATUS_LABELS.get(broadcast.status, broadcast.status),
        "final": broadcast.status in FINAL_BROADCAST_STATUSES,
        "progress": progress(broadcast),
        "failures": failures(broadcast),
        "mass_send_report": broadcast.report or None,
        "labels": CHANNEL_LABELS,
    }


@bp.get("/broadcasts/<int:broadcast_id>")
@login_required
def broadcast_show(broadcast_id: int):
    broadcast = _visible(broadcast_id)
    return render_template(
        "console/broadcast_show.html",
        b=broadcast,
        r=_report(broadcast),
        roles=AUDIENCE_ROLES,
        skip_labels=SKIP_LABELS,
        may_cancel=g.user.role in PUBLISHER_ROLES,
        region_names=node_names(broadcast.audience.get("regions") or []),
    )


@bp.get("/broadcasts/<int:broadcast_id>/progress")
@login_required
def broadcast_progress(broadcast_id: int):
    return _report(_visible(broadcast_id))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
@login_required
def broadcast_cancel(broadcast_id: int):
    try:
        service.cancel(broadcast_id, g.user, utcnow())
    except BroadcastError as exc:
        if exc.status in (403, 404):
            abort(exc.status, description=exc.message)
        flash(exc.message, "error")
        return redirect(url_for("console.broadcast_show", broadcast_id=broadcast_id), 303)
    flash("已停止发送尚未发出的部分", "ok")
    return redirect(url_for("console.broadcast_show", broadcast_id=broadcast_id), 303)
