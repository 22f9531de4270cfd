"""Loading a region file (DESIGN.md format): the file is the truth for its subtree.

Everything is validated first; then, in one transaction, nodes are added, changed, moved and retired
(a node under the file's root that the file no longer lists is retired: kept for history and statistics,
never given new work), members are synced, and open tickets on a retired or moved node are re-routed by
their place. A dry run does all of it and rolls back, so its diff is exactly what the real run would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import yaml

from models import Member, Outbox, RegionNode, audit, db, utcnow
from models.region import MEMBER_ROLES, TIER_RANK, TIERS
from ops.privacy import mask_name
from regions.rehoming import rehome_tickets

# The node fields a re-import compares to say what changed.
_COMPARED = ("name", "tier", "aliases", "places", "boundary", "lat", "lng", "group")


class RegionFileError(ValueError):
    """The file is invalid; `problems` lists each one with its line and node."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _LineLoader(yaml.SafeLoader):
    """Safe YAML that remembers the line each mapping starts on."""


def _construct_mapping(loader, node):
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_region_file(text: str) -> dict:
    """Parse and validate; raises RegionFileError naming every bad line and node."""
    try:
        tree = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - _LineLoader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise RegionFileError([f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(tree, dict):
        raise RegionFileError(["line 1: the file must be one mapping (the root node)"])
    problems: list[str] = []
    _validate(tree, None, set(), set(), problems)
    if problems:
        raise RegionFileError(problems)
    return tree


@dataclass
class RegionDiff:
    """What an import did (or, in a dry run, would do). Each list holds one readable line per item."""

    root: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    members_in: list[str] = field(default_factory=list)
    members_out: list[str] = field(default_factory=list)
    tickets_moved: list[str] = field(default_factory=list)
    # The group notices for re-routed tickets, committed with the import: the caller enqueues their delivery.
    outbox_ids: list[int] = field(default_factory=list)
    unchanged: int = 0
    members: int = 0  # members the file lists
    dry_run: bool = False

    @property
    def created(self) -> int:
        return len(self.added)

    @property
    def updated(self) -> int:
        """Nodes of the file that were already in the database (changed or not)."""
        return len(self.changed) + len(self.moved) + len(self.restored) + self.unchanged

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.moved or self.retired or self.restored) and not (
            self.members_in or self.members_out or self.tickets_moved
        )

    def summary_lines(self) -> list[str]:
        head = "dry run, nothing changed" if self.dry_run else "imported"
        lines = [
            f"{head}: region {self.root}: {len(self.added)} nodes created, {len(self.changed)} changed, "
            f"{len(self.moved)} moved, {len(self.retired)} retired, {len(self.restored)} restored, "
            f"{self.unchanged} unchanged; members {len(self.members_in)} in, {len(self.members_out)} out; "
            f"{len(self.tickets_moved)} open tickets re-routed"
        ]
        for title, items in (
            ("created", self.added),
            ("changed", self.changed),
            ("moved", self.moved),
            ("retired", self.retired),
            ("restored", self.restored),
            ("members in", self.members_in),
            ("members out", self.members_out),
            ("tickets re-routed", self.tickets_moved),
        ):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {item}" for item in items]
        return lines


def _validate(node: dict, parent: dict | None, codes: set, userids: set, problems: list[str]) -> None:
    line = node.get("__line__", "?")
    label = f"line {line} (node {node.get('code', '?')} {node.get('name', '')})".rstrip()

    def bad(message: str) -> None:
        problems.append(f"{label}: {message}")

    code, name, tier = node.get("code"), node.get("name"), node.get("tier")
    if not isinstance(code, (str, int)) or not str(code).strip():
        bad("`code` is required")
    elif str(code) in codes:
        bad(f"code {code} appears twice")
    else:
        codes.add(str(code))
    if not isinstance(name, str) or not name.strip():
        bad("`name` is required")
    if tier not in TIERS:
        bad(f"tier {tier!r} must be one of {', '.join(TIERS)}")
    elif parent is not None and parent.get("tier") in TIER_RANK and TIER_RANK[tier] <= TIER_RANK[parent["tier"]]:
        bad(f"a {tier} cannot sit under a {parent['tier']}")
    for key in ("aliases", "places"):
        value = node.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            bad(f"`{key}` must be a list of names")
    boundary = node.get("boundary")
    if boundary is not None and (
        not isinstance(boundary, dict)
        or boundary.get("type") not in ("Polygon", "MultiPolygon")
        or not isinstance(boundary.get("coordinates"), list)
    ):
        bad("`boundary` must be a GeoJSON Polygon or MultiPolygon")
    for key, low, high in (("lat", -90, 90), ("lng", -180, 180)):
        value = node.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not low <= value <= high):
            bad(f"`{key}` must be a number between {low} and {high}")
    group = node.get("group")
    if group is not None and (not isinstance(group, dict) or not set(group) - {"__line__"} <= {"robot_key", "chat_id"}):
        bad("`group` may only hold robot_key and chat_id")
    members = node.get("members", [])
    if not isinstance(members, list):
        bad("`members` must be a list")
        members = []
    for member in members:
        mline = member.get("__line__", line) if isinstance(member, dict) else line
        if not isinstance(member, dict) or not str(member.get("name") or "").strip():
            problems.append(f"line {mline} (node {code}): a member needs a name")
            continue
        if member.get("role") not in MEMBER_ROLES:
            problems.append(
                f"line {mline} (node {code}): member {member['name']} has role {member.get('role')!r}, "
                f"expected one of {', '.join(MEMBER_ROLES)}"
            )
        userid = member.get("wecom_userid")
        if userid:
            if str(userid) in userids:
                problems.append(f"line {mline} (node {code}): wecom_userid {userid} is used twice")
            userids.add(str(userid))
    children = node.get("children", [])
    if not isinstance(children, list):
        bad("`children` must be a list")
        return
    for child in children:
        if not isinstance(child, dict):
            bad("each child must be a node mapping")
            continue
        _validate(child, node, codes, userids, problems)


def import_region(text: str, actor: str = "cli", *, dry_run: bool = False, now: datetime | None = None) -> RegionDiff:
    """Make the database's subtree match the file. All or nothing; a dry run rolls everything back."""
    tree = parse_region_file(text)
    now = now or utcnow()
    diff = RegionDiff(root=str(tree["code"]), dry_run=dry_run)
    try:
        existing = {n.code: n for n in db.session.execute(db.select(RegionNode)).scalars()}
        before = {code: _snapshot(node) for code, node in existing.items()}
        old_root = existing.get(diff.root)
        scope = {c for c, n in existing.items() if old_root is not None and n.path.startswith(old_root.path)}
        members_before = {m.id: (m.node.code, m.active, m) for m in db.session.execute(db.select(Member)).scalars()}
        by_userid = {m.wecom_userid: m for _, _, m in members_before.values() if m.wecom_userid}
        seen: list[str] = []
        root_parent = old_root.parent if old_root is not None else None
        _upsert(tree, root_parent, existing, seen, by_userid, diff)
        seen_set = set(seen)
        for code in sorted(scope - seen_set):
            node = existing[code]
            if node.retired_at is None:
                node.retired_at = now
                diff.retired.append(f"{code} {node.name}")
            for member in node.members:
                member.active = False
        db.session.flush()
        _recompute_paths()
        _describe_nodes(seen, existing, before, diff)
        _describe_members(members_before, diff)
        db.session.flush()
        moved_or_retired = {code for code in existing if code in scope - seen_set} | {
            code for code in seen if code in before and before[code]["path"] != existing[code].path
        }
        notices: list[Outbox] = []
        diff.tickets_moved = rehome_tickets(moved_or_retired, now, notices)
        db.session.flush()
        audit(
            actor,
            "region.imported",
            diff.root,
            added=len(diff.added),
            changed=len(diff.changed),
            moved=len(diff.moved),
            retired=len(diff.retired),
            restored=len(diff.restored),
            members_in=len(diff.members_in),
            members_out=len(diff.members_out),
            tickets_moved=len(diff.tickets_moved),
        )
        if dry_run:
            db.session.rollback()
        else:
            diff.outbox_ids = [message.id for message in notices]
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return diff


def _snapshot(node: RegionNode) -> dict:
    values = {key: getattr(node, key) for key in _COMPARED}
    return values | {"parent": node.parent.code if node.parent else None, "path": node.path, "retired": node.retired_at}


def _upsert(
    spec: dict, parent: RegionNode | None, existing: dict, seen: list, by_userid: dict, diff: RegionDiff
) -> None:
    code = str(spec["code"])
    seen.append(code)
    node = existing.get(code)
    if node is None:
        node = RegionNode(code=code, path="")
        db.session.add(node)
        existing[code] = node
    node.name = spec["name"].strip()
    node.tier = spec["tier"]
    node.parent = parent
    node.aliases = [a.strip() for a in spec.get("aliases", [])]
    node.places = [p.strip() for p in spec.get("places", [])]
    node.boundary = _strip_lines(spec.get("boundary"))
    node.lat, node.lng = spec.get("lat"), spec.get("lng")
    node.group = _strip_lines(spec.get("group"))
    node.retired_at = None
    _sync_members(node, spec.get("members", []), by_userid, diff)
    for child in spec.get("children", []):
        _upsert(child, node, existing, seen, by_userid, diff)


def _describe_nodes(seen: list[str], existing: dict, before: dict, diff: RegionDiff) -> None:
    for code in seen:
        node, old = existing[code], before.get(code)
        label = f"{code} {node.name}"
        if old is None:
            diff.added.append(f"{label} ({node.tier}, under {node.parent.code if node.parent else '-'})")
            continue
        if old["retired"] is not None:
            diff.restored.append(label)
            continue
        new_parent = node.parent.code if node.parent else None
        if new_parent != old["parent"]:
            diff.moved.append(f"{label}: from under {old['parent'] or '-'} to under {new_parent or '-'}")
            continue
        fields = [key for key in _COMPARED if getattr(node, key) != old[key]]
        if fields:
            diff.changed.append(f"{label}: {', '.join(fields)}")
        else:
            diff.unchanged += 1


def _sync_members(node: RegionNode, specs: list[dict], by_userid: dict, diff: RegionDiff) -> None:
    """Match by WeCom userid (anywhere in the tree: a member may move grid), else by name and role on the
    node; members of the node no longer listed are deactivated, not deleted (tickets refer to them)."""
    current = list(node.members)
    kept: set[int] = set()
    for spec in specs:
        userid = str(spec["wecom_userid"]) if spec.get("wecom_userid") else None
        match = by_userid.get(userid) if userid else None
        if match is None:
            match = next(
                (m for m in current if m.name == spec["name"].strip() and m.role == spec["role"] and id(m) not in kept),
                None,
            )
        if match is None:
            match = Member(name=spec["name"].strip(), role=spec["role"])
            db.session.add(match)
        match.node = node
        match.name, match.role, match.wecom_userid = spec["name"].strip(), spec["role"], userid
        match.mobile = str(spec["mobile"]) if spec.get("mobile") else None
        match.active = True
        if userid:
            by_userid[userid] = match
        kept.add(id(match))
        diff.members += 1
    for member in current:
        if id(member) not in kept and member.node is node:
            member.active = False


def _describe_members(before: dict, diff: RegionDiff) -> None:
    members = db.session.execute(
        db.select(Member)
        .join(RegionNode, Member.node_id == RegionNode.id)
        .order_by(RegionNode.path, Member.role, Member.name)  # not by id: a dry run's ids are not the real run's
    ).scalars()
    for member in members:
        old = before.get(member.id)
        label = f"{mask_name(member.name)} ({member.role}) {member.node.code}"
        if old is None:
            if member.active:
                diff.members_in.append(label)
        elif member.active and (not old[1] or old[0] != member.node.code):
            diff.members_in.append(label + (f" (from {old[0]})" if old[0] != member.node.code else ""))
        elif old[1] and not member.active:
            diff.members_out.append(label)


def _recompute_paths() -> None:
    nodes = {n.id: n for n in db.session.execute(db.select(RegionNode)).scalars()}

    def path_of(node: RegionNode) -> str:
        parent = nodes.get(node.parent_id) if node.parent_id else None
        return (path_of(parent) if parent else "/") + node.code + "/"

    for node in nodes.values():
        node.path = path_of(node)


def _strip_lines(value):
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value
