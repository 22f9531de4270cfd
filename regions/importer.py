"""Loading a region file (DESIGN.md format): validate everything first, then upsert by code in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from models import Member, RegionNode, audit, db
from models.region import MEMBER_ROLES, TIER_RANK, TIERS


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


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    members: int = 0
    untouched: list[str] = field(default_factory=list)


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


def import_region(text: str, actor: str = "cli") -> ImportResult:
    """Validate, then create/update every node and member by code. All or nothing."""
    tree = parse_region_file(text)
    result = ImportResult()
    existing = {n.code: n for n in db.session.execute(db.select(RegionNode)).scalars()}
    seen: set[str] = set()
    try:
        _upsert(tree, None, existing, seen, result)
        db.session.flush()
        _recompute_paths()
        result.untouched = sorted(set(existing) - seen)
        audit(
            actor,
            "region.imported",
            str(tree["code"]),
            created=result.created,
            updated=result.updated,
            members=result.members,
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


def _upsert(spec: dict, parent: RegionNode | None, existing: dict, seen: set, result: ImportResult) -> None:
    code = str(spec["code"])
    seen.add(code)
    node = existing.get(code)
    if node is None:
        node = RegionNode(code=code, path="")
        db.session.add(node)
        existing[code] = node
        result.created += 1
    else:
        result.updated += 1
    node.name = spec["name"].strip()
    node.tier = spec["tier"]
    node.parent = parent
    node.aliases = [a.strip() for a in spec.get("aliases", [])]
    node.places = [p.strip() for p in spec.get("places", [])]
    node.boundary = _strip_lines(spec.get("boundary"))
    node.lat, node.lng = spec.get("lat"), spec.get("lng")
    node.group = _strip_lines(spec.get("group"))
    _sync_members(node, spec.get("members", []), result)
    for child in spec.get("children", []):
        _upsert(child, node, existing, seen, result)


def _sync_members(node: RegionNode, specs: list[dict], result: ImportResult) -> None:
    """Match by WeCom userid, else by name and role; members no longer listed are deactivated, not deleted."""
    current = list(node.members)
    kept = set()
    for spec in specs:
        userid = str(spec["wecom_userid"]) if spec.get("wecom_userid") else None
        match = next((m for m in current if userid and m.wecom_userid == userid), None) or next(
            (m for m in current if m.name == spec["name"] and m.role == spec["role"] and id(m) not in kept), None
        )
        if match is None:
            match = Member(name=spec["name"], role=spec["role"])
            node.members.append(match)
        match.name, match.role, match.wecom_userid = spec["name"].strip(), spec["role"], userid
        match.mobile = str(spec["mobile"]) if spec.get("mobile") else None
        match.active = True
        kept.add(id(match))
        result.members += 1
    for member in current:
        if id(member) not in kept:
            member.active = False


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
