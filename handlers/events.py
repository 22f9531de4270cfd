"""Official-account events: subscribe, unsubscribe, periodic LOCATION, menu clicks, mass-send reports."""

from __future__ import annotations

from broadcasts.compose import record_mass_report
from handlers import commands
from models import node_by_code
from workflow import replies
from workflow.locating import locate, valid_point

# Menu keys a county can configure on the account's custom menu.
MENU_REPLIES = {"HELP": replies.HELP, "REPORT": replies.HELP}


def handle_event(intake) -> None:
    event = intake.inbound.msg_type.split(":", 1)[1]
    resident, payload = intake.resident, intake.inbound.payload
    if event in ("subscribe", "subscribe_scan"):
        resident.subscribed = True
        resident.subscribed_at = intake.now
        _remember_scene(resident, payload)
        intake.reply(replies.WELCOME, kind="welcome")
    elif event == "scan":
        _remember_scene(resident, payload)
    elif event == "unsubscribe":
        resident.subscribed = False
        resident.unsubscribed_at = intake.now
    elif event == "location":
        point = valid_point(payload.get("Latitude"), payload.get("Longitude"))
        placement = locate(*point) if point else None
        if placement is None or not placement.inside:
            return  # far away (travelling, a spoofed fix): it says nothing about where the resident lives
        resident.lat, resident.lng = point
        resident.grid_code = placement.grid_code or resident.grid_code
    elif event == "click":
        key = str(payload.get("EventKey") or "").upper()
        if key in commands.MENU_COMMANDS:  # 我的诉求 / 政策通知 / 订阅 / 退订 (config/menu.yaml)
            commands.handle_command(intake, commands.MENU_COMMANDS[key])
            return
        text = MENU_REPLIES.get(key)
        if text:
            intake.reply(text, kind="menu")
    elif event == "masssendjobfinish":
        # WeChat's account of one mass send (sent / filtered / errors), stored against its broadcast batch.
        record_mass_report(payload)


def _remember_scene(resident, payload: dict) -> None:
    """A QR code posted in a grid carries the grid's code as its scene: it tells us where the resident lives.

    wechatpy turns a subscribe with "qrscene_<code>" into `subscribe_scan` with the prefix removed.
    """
    scene = str(payload.get("EventKey") or "").removeprefix("qrscene_")
    if scene and node_by_code(scene):
        resident.grid_code = scene
