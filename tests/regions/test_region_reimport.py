"""Re-drawing the grids: the file is the truth for its subtree; open tickets follow their place; a dry run
changes nothing; the next parse after an import uses the new map at once."""

from __future__ import annotations

from pathlib import Path

import yaml

from demand import Gazetteer
from handlers.parsing import get_parser
from models import Member, Outbox, RegionNode, Ticket, TicketEvent, TicketStatus, db, region_tree, utcnow
from regions.importer import import_region
from workflow.tickets import assign_number

DATA = Path(__file__).resolve().parent / "data"
REDRAWN = (DATA / "redrawn_region.yaml").read_text(encoding="utf-8")


def file_codes(text: str) -> set[str]:
    codes, stack = set(), [yaml.safe_load(text)]
    while stack:
        node = stack.pop()
        codes.add(str(node["code"]))
        stack += node.get("children", [])
    return codes


def active_codes() -> set[str]:
    return set(db.session.execute(db.select(RegionNode.code).filter(RegionNode.retired_at.is_(None))).scalars())


def open_ticket(grid: str, place: str | None, status: str = TicketStatus.ASSIGNED) -> int:
    ticket = Ticket(
        channel="mp",
        status=status,
        grid_code=grid,
        owner_code=grid,
        place=place,
        location_text=place,
        category="城乡建设",
        description=f"{place or '这里'}路灯坏了",
        created_at=utcnow(),
        due_at=utcnow(),
    )
    db.session.add(ticket)
    db.session.flush()
    assign_number(ticket)
    db.session.commit()
    return ticket.id


def state() -> tuple:
    """Everything an import may touch, to compare before and after a dry run."""
    nodes = db.session.execute(
        db.select(RegionNode.code, RegionNode.name, RegionNode.path, RegionNode.retired_at).order_by(RegionNode.code)
    ).all()
    members = db.session.execute(db.select(Member.id, Member.node_id, Member.active).order_by(Member.id)).all()
    tickets = db.session.execute(db.select(Ticket.id, Ticket.grid_code, Ticket.owner_code).order_by(Ticket.id)).all()
    events = db.session.execute(db.select(db.func.count(TicketEvent.id))).scalar_one()
    notices = db.session.execute(db.select(db.func.count(Outbox.id))).scalar_one()
    return nodes, members, tickets, events, notices


def test_new_tree_over_the_demo_county_leaves_exactly_it_active_and_resolves_its_places(region):
    with region.app_context():
        diff = import_region(REDRAWN)
        assert active_codes() == file_codes(REDRAWN)
        retired = set(
            db.session.execute(db.select(RegionNode.code).filter(RegionNode.retired_at.is_not(None))).scalars()
        )
        assert {"990101001002", "990101001003", "990101002", "990102", "990102001001", "990103002001"} <= retired
        gazetteer = Gazetteer.from_region_tree(region_tree())
        # 东大菜市场 moved from the first grid, 东大小学 from the retired second one: both to the new 东市网格.
        assert gazetteer.resolve("东大菜市场旁边路灯坏了").grid == "990101001004"
        assert gazetteer.resolve("东大小学门口").grid == "990101001004"
        assert gazetteer.resolve("杨庄小学").grid == "990103001001"
        assert gazetteer.resolve("幸福里小区3栋").grid == "990101002001"
        # A place only a retired grid listed resolves to nothing, not to a ghost.
        assert gazetteer.resolve("锦绣家园") is None and gazetteer.resolve("滨河小区") is None
        moved = db.session.execute(db.select(RegionNode).filter_by(code="990101002001")).scalar_one()
        assert moved.path == "/990100/990101/990101003/990101002001/"
    assert any(line.startswith("990101002001") for line in diff.moved)
    assert any(line.startswith("990101001004") for line in diff.added)
    assert any(line.startswith("990102 ") for line in diff.retired)


def test_members_follow_the_file(region):
    with region.app_context():
        diff = import_region(REDRAWN)
        members = {m.wecom_userid: m for m in db.session.execute(db.select(Member)).scalars()}
        assert members["zhaozg"].active and members["zhaozg"].node.code == "990101001004"  # moved with the grid
        assert members["qianxf"].active and members["zhangwy"].active
        for gone in ("huj", "maj", "lixl", "sunlj", "yangdm", "liuhm"):
            assert not members[gone].active, gone
        assert db.session.execute(db.select(db.func.count(Member.id)).filter_by(wecom_userid="zhaozg")).scalar() == 1
    assert any("990101001004" in line and "from 990101001002" in line for line in diff.members_in)
    assert len(diff.members_out) >= 6


def test_open_tickets_on_retired_or_moved_grids_move_by_their_place_with_an_event(region):
    with region.app_context():
        by_place = open_ticket("990101001002", "东大小学")
        no_match = open_ticket("990102001001", "滨河小区")
        closed = open_ticket("990101001003", "东大花园", status=TicketStatus.CLOSED)
        moved_grid = open_ticket("990101002001", "幸福里小区")
        diff = import_region(REDRAWN)
        tickets = {t.id: t for t in db.session.execute(db.select(Ticket)).scalars()}
        assert (tickets[by_place].grid_code, tickets[by_place].owner_code) == ("990101001004", "990101001004")
        # Nothing in the new tree knows 滨河小区 and its whole town is gone: the county takes it.
        assert (tickets[no_match].grid_code, tickets[no_match].owner_code) == (None, "990100")
        assert tickets[closed].grid_code == "990101001003"  # history stays as it was
        assert tickets[moved_grid].owner_code == "990101002001"
        events = {
            e.ticket_id: e for e in db.session.execute(db.select(TicketEvent).filter_by(kind="rerouted")).scalars()
        }
        assert set(events) == {by_place, no_match}
        assert "东大小学" in events[by_place].note and "已撤销" in events[by_place].note
        assert events[by_place].data["from_grid"] == "990101001002"
        assert "转上级" in events[no_match].note
        # The new owners' groups are told: 城关镇's robot (the grid has none) and the county's, once each.
        notices = db.session.execute(db.select(Outbox).filter(Outbox.id.in_(diff.outbox_ids))).scalars().all()
        told = {(n.ticket_id, n.recipient) for n in notices}
        assert told == {(by_place, "demo-chengguan-robot"), (no_match, "demo-county-robot")}
        assert "工单转派至东大社区东市网格" in next(n for n in notices if n.ticket_id == by_place).payload["content"]
    assert len(diff.tickets_moved) == 2


def test_dry_run_prints_the_same_diff_and_changes_nothing(region):
    with region.app_context():
        open_ticket("990101001002", "东大小学")
        before = state()
        dry = import_region(REDRAWN, dry_run=True)
        db.session.remove()
        assert state() == before
        real = import_region(REDRAWN)
    assert dry.summary_lines()[1:] == real.summary_lines()[1:]
    assert dry.outbox_ids == [] and len(real.outbox_ids) == 1
    assert dry.summary_lines()[0].startswith("dry run") and dry.tickets_moved and dry.retired and dry.added


def test_reimporting_the_same_file_changes_nothing_and_a_retired_node_can_return(region):
    demo = (Path(__file__).resolve().parents[2] / "config" / "demo_region.yaml").read_text(encoding="utf-8")
    with region.app_context():
        again = import_region(demo)
        assert again.empty and again.unchanged == len(file_codes(demo))
        import_region(REDRAWN)
        back = import_region(demo)
        assert active_codes() >= file_codes(demo)
    assert "990102 河西街道" in back.restored


def test_cli_dry_run_and_import_then_the_next_parse_uses_the_new_map(region, tmp_path):
    path = tmp_path / "redrawn.yaml"
    path.write_text(REDRAWN, encoding="utf-8")
    runner = region.test_cli_runner()
    with region.app_context():
        assert get_parser(region.instance_path).parse("东大菜市场路灯坏了").location.grid == "990101001001"
    dry = runner.invoke(args=["import-region", "--dry-run", str(path)])
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing changed" in dry.output and "990101001004" in dry.output and "retired (" in dry.output
    with region.app_context():
        assert get_parser(region.instance_path).parse("东大菜市场路灯坏了").location.grid == "990101001001"
    real = runner.invoke(args=["import-region", str(path)])
    assert real.exit_code == 0, real.output
    assert "imported: region 990100" in real.output
    with region.app_context():
        # No 30-second wait: the import bumped the map version, and the very next call rebuilt the parser.
        assert get_parser(region.instance_path).parse("东大菜市场路灯坏了").location.grid == "990101001004"
