"""`flask sync-menu`: create the official account's custom menu from a YAML file (config/menu.yaml by default)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml
from flask import current_app
from flask.cli import with_appcontext

from bot.clients import SendError, wechat_api
from config import CONFIG_DIR

DEFAULT_MENU = CONFIG_DIR / "menu.yaml"
# WeChat's limits (menu/create): 3 top buttons of ≤16 bytes, 5 sub-buttons of ≤60 bytes each.
TOP_BUTTONS, SUB_BUTTONS = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES = 16, 60
TYPES = {"click": ("key",), "view": ("url",), "miniprogram": ("url", "appid", "pagepath")}


class MenuError(ValueError):
    pass


def load_menu(path: Path) -> dict:
    """Read and check a menu file; raises MenuError naming each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MenuError(f"{path}: {exc}") from None
    buttons = data.get("button") if isinstance(data, dict) else None
    problems: list[str] = []
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= TOP_BUTTONS:
        raise MenuError(f"{path}: `button` must list 1 to {TOP_BUTTONS} buttons")
    for top in buttons:
        _check(top, TOP_NAME_BYTES, problems, sub_allowed=True)
    if problems:
        raise MenuError("\n".join(f"{path}: {p}" for p in problems))
    return {"button": buttons}


def _check(button, name_bytes: int, problems: list[str], sub_allowed: bool) -> None:
    if not isinstance(button, dict):
        problems.append(f"{button!r} is not a button")
        return
    name = str(button.get("name") or "")
    if not name or len(name.encode("utf-8")) > name_bytes:
        problems.append(f"button {name!r}: a name of 1–{name_bytes} bytes is required")
    subs = button.get("sub_button")
    if subs is not None:
        if not sub_allowed or not isinstance(subs, list) or not 1 <= len(subs) <= SUB_BUTTONS:
            problems.append(f"button {name!r}: sub_button must list 1 to {SUB_BUTTONS} buttons (one level only)")
            return
        for sub in subs:
            _check(sub, SUB_NAME_BYTES, problems, sub_allowed=False)
        return
    kind = button.get("type")
    if kind not in TYPES:
        problems.append(f"button {name!r}: type must be one of {', '.join(TYPES)}")
        return
    missing = [field for field in TYPES[kind] if not button.get(field)]
    if missing:
        problems.append(f"button {name!r}: a {kind} button needs {', '.join(missing)}")


@click.command("sync-menu")
@click.option("--file", "menu_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--dry-run", is_flag=True, help="check the file and print the JSON without calling WeChat")
@with_appcontext
def sync_menu_command(menu_file: Path | None, dry_run: bool) -> None:
    """Create the official account's menu (报事 / 我的诉求 / 政策通知 by default)."""
    path = menu_file or Path(current_app.config.get("MENU_FILE") or DEFAULT_MENU)
    try:
        menu = load_menu(path)
    except MenuError as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo(json.dumps(menu, ensure_ascii=False, indent=2))
        return
    try:
        wechat_api().create_menu(menu)
    except SendError as exc:
        raise click.ClickException(f"menu/create refused: {exc}") from None
    click.echo(f"menu created from {path}: " + " / ".join(str(b["name"]) for b in menu["button"]))
