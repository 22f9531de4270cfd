"""Loading a members roster (网格员花名册) from a spreadsheet: .xlsx or .csv, one member a row.

Columns are found by their header, in Chinese or English: 姓名/name, 角色/role, 网格/grid (a node's code
or name), 企业微信账号/wecom_userid, 手机/mobile. Every row is checked before anything is written; errors
name the spreadsheet row as staff see it ("第 3 行"). The roster is the truth for each node it lists:
members of those nodes it no longer names are deactivated (kept for history). All or nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl

from models import Member, RegionNode, audit, db
from models.region import MEMBER_ROLES
from ops.privacy import mask_name

COLUMNS = {
    "name": ("姓名", "名字", "name"),
    "role": ("角色", "职务", "岗位", "身份", "role"),
    "grid": ("网格", "网格编码", "网格名称", "所属网格", "所在网格", "单位", "grid", "node", "code"),
    "wecom_userid": ("企业微信账号", "企业微信", "企业微信id", "userid", "wecom_userid", "账号"),
    "mobile": ("手机", "手机号", "手机号码", "电话", "联系电话", "mobile", "phone"),
}
ROLE_NAMES = {
    "信息员": "info_officer",
    "网格信息员": "info_officer",
    "网格员": "grid_officer",
    "专职网格员": "grid_officer",
    "兼职网格员": "grid_officer",
    "网格长": "grid_officer",
    "党小组长": "party_leader",
    "党员中心户": "party_leader",
    "村干部": "cadre",
    "社区干部": "cadre",
    "村（社区）干部": "cadre",
    "干部": "cadre",
    "民警": "police",
    "社区民警": "police",
    "辅警": "police",
    "工作人员": "staff",
    "职能部门": "department",
    "部门": "department",
}
_MOBILE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8})$")


class RosterError(ValueError):
    """The roster cannot be loaded; `problems` lists each one by spreadsheet row, in Chinese for staff."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class RosterRow:
    line: int
    name: str
    role: str
    node: RegionNode
    wecom_userid: str | None
    mobile: str | None


@dataclass
class RosterResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    rows: int = 0
    dry_run: bool = False

    def summary_lines(self) -> list[str]:
        head = "dry run, nothing changed" if self.dry_run else "imported"
        lines = [
            f"{head}: {self.rows} rows; {len(self.added)} members added, {len(self.updated)} updated, "
            f"{len(self.deactivated)} deactivated"
        ]
        for title, items in (("added", self.added), ("updated", self.updated), ("deactivated", self.deactivated)):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {item}" for item in items]
        return lines


def read_rows(path: Path) -> list[tuple[int, list]]:
    """(spreadsheet row number, cell values) for every row, header included."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several kinds for a damaged or foreign file
            raise RosterError([f"无法读取表格文件：{exc}（请另存为 .xlsx 或 .csv 后重试）"]) from None
        sheet = book.worksheets[0]
        rows = [(number, list(values)) for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)]
        book.close()
        return rows
    if suffix == ".csv":
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK unless told otherwise
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise RosterError(["无法识别 CSV 文件的编码，请另存为 UTF-8 编码的 CSV 或 .xlsx"])
        return list(enumerate(csv.reader(io.StringIO(text)), start=1))
    raise RosterError([f"不支持的文件类型 {suffix or '（无扩展名）'}：请使用 .xlsx 或 .csv"])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a mobile typed as a number comes back from Excel as 13800000000.0
    return str(value).strip()


def _header(rows: list[tuple[int, list]]) -> tuple[int, dict[str, int]]:
    for index, (number, values) in enumerate(rows):
        cells = [_cell(v).lower().replace(" ", "") for v in values]
        if not any(cells):
            continue
        found = {}
        for key, names in COLUMNS.items():
            for position, cell in enumerate(cells):
                if cell in names:
                    found[key] = position
                    break
        missing = [COLUMNS[key][0] for key in ("name", "role", "grid") if key not in found]
        if missing:
            known = "姓名、角色、网格、企业微信账号、手机"
            raise RosterError([f"第 {number} 行（表头）缺少列：{'、'.join(missing)}（可用的列名：{known}）"])
        return index, found
    raise RosterError(["表格是空的：第一行应为表头（姓名、角色、网格、企业微信账号、手机）"])


def _node_finder() -> tuple[dict[str, RegionNode], dict[str, list[RegionNode]]]:
    nodes = db.session.execute(db.select(RegionNode).filter(RegionNode.retired_at.is_(None))).scalars().all()
    by_code = {n.code: n for n in nodes}
    by_name: dict[str, list[RegionNode]] = {}
    for node in nodes:
        for name in [node.name, *(node.aliases or [])]:
            by_name.setdefault(name, []).append(node)
    return by_code, by_name


def parse_roster(path: Path) -> list[RosterRow]:
    """Every row checked; raises RosterError listing each bad row."""
    rows = read_rows(path)
    start, columns = _header(rows)
    by_code, by_name = _node_finder()
    role_hint = "、".join(sorted(set(ROLE_NAMES) - {"干部", "部门"})[:8])
    problems: list[str] = []
    parsed: list[RosterRow] = []
    userid_rows: dict[str, int] = {}
    for number, values in rows[start + 1 :]:
        cells = {key: _cell(values[at]) if at < len(values) else "" for key, at in columns.items()}
        name, role_text, grid = cells["name"], cells["role"], cells["grid"]
        userid, mobile = cells.get("wecom_userid") or None, cells.get("mobile", "").replace(" ", "") or None
        if not any((name, role_text, grid, userid, mobile)):
            continue  # blank rows between blocks are common in hand-kept rosters
        row_problems = []
        if not name:
            row_problems.append("缺少姓名")
        role = role_text if role_text in MEMBER_ROLES else ROLE_NAMES.get(role_text)
        if role is None:
            row_problems.append(f"角色「{role_text or '空'}」无法识别（可填：{role_hint} 等）")
        node = by_code.get(grid)
        if node is None:
            matches = by_name.get(grid, [])
            if len(matches) == 1:
                node = matches[0]
            elif len(matches) > 1:
                codes = "、".join(n.code for n in matches[:5])
                row_problems.append(f"网格「{grid}」对应多个单位（编码 {codes}），请改填网格编码")
            else:
                row_problems.append(f"找不到网格「{grid or '空'}」（请填写网格编码或名称，已撤销的网格不能再添加成员）")
        if mobile and not _MOBILE.match(mobile):
            row_problems.append(f"手机号「{mobile}」格式不正确（应为 11 位手机号或带区号的座机）")
        if userid:
            if userid in userid_rows:
                row_problems.append(f"企业微信账号 {userid} 与第 {userid_rows[userid]} 行重复")
            userid_rows.setdefault(userid, number)
        if row_problems:
            problems.append(f"第 {number} 行：{'；'.join(row_problems)}")
            continue
        assert role is not None and node is not None
        parsed.append(RosterRow(number, name, role, node, userid, mobile))
    if problems:
        raise RosterError(problems)
    if not parsed:
        raise RosterError(["表格中没有成员（表头之后的行都是空的）"])
    return parsed


def import_members(path: Path, actor: str = "cli", *, dry_run: bool = False) -> RosterResult:
    """Upsert every listed member (by WeCom userid, else name and role on the node); deactivate members of
    the listed nodes that the roster no longer names. All or nothing; a dry run rolls back."""
    rows = parse_roster(path)
    result = RosterResult(rows=len(rows), dry_run=dry_run)
    try:
        members = list(db.session.execute(db.select(Member)).scalars())
        by_userid = {m.wecom_userid: m for m in members if m.wecom_userid}
        kept: set[int] = set()
        for row in rows:
            match = by_userid.get(row.wecom_userid) if row.wecom_userid else None
            if match is None:
                match = next(
                    (
                        m
                        for m in members
                        if m.node_id == row.node.id and m.name == row.name and m.role == row.role and m.id not in kept
                    ),
                    None,
                )
            label = f"第 {row.line} 行 {mask_name(row.name)} ({row.role}) {row.node.code}"
            if match is None:
                match = Member(name=row.name, role=row.role, node=row.node)
                db.session.add(match)
                members.append(match)
                result.added.append(label)
            else:
                before = (match.node_id, match.name, match.role, match.wecom_userid, match.mobile, match.active)
                after = (row.node.id, row.name, row.role, row.wecom_userid or match.wecom_userid, row.mobile, True)
                if before != after:
                    result.updated.append(label)
            match.node, match.name, match.role = row.node, row.name, row.role
            match.wecom_userid = row.wecom_userid or match.wecom_userid
            match.mobile = row.mobile
            match.active = True
            db.session.flush()
            kept.add(match.id)
        listed_nodes = {row.node.id for row in rows}
        for member in members:
            if member.node_id in listed_nodes and member.active and member.id not in kept:
                member.active = False
                result.deactivated.append(f"{mask_name(member.name)} ({member.role}) {member.node.code}")
        audit(
            actor,
            "members.imported",
            path.name,
            rows=result.rows,
            added=len(result.added),
            updated=len(result.updated),
            deactivated=len(result.deactivated),
        )
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result
