"""Region files: load, re-import in place, refuse invalid files whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import Member, RegionNode, db, subtree_codes
from regions.importer import RegionFileError, import_region, parse_region_file

DEMO = (Path(__file__).resolve().parents[2] / "config" / "demo_region.yaml").read_text(encoding="utf-8")


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.execute(db.select(db.func.count(RegionNode.id))).scalar_one(),
            db.session.execute(db.select(db.func.count(Member.id))).scalar_one(),
        )


def test_demo_region_loads_with_paths_and_members(app):
    with app.app_context():
        result = import_region(DEMO)
        grid = db.session.execute(db.select(RegionNode).filter_by(code="990101001001")).scalar_one()
        assert grid.path == "/990100/990101/990101001/990101001001/"
        assert "阳光花园" in grid.places and grid.boundary["type"] == "Polygon"
        assert set(subtree_codes("990103")) == {"990103", "990103001", "990103001001", "990103002", "990103002001"}
    assert result.created == counts(app)[0] and result.created > 15


def test_reimport_updates_in_place_without_duplicates(app):
    with app.app_context():
        import_region(DEMO)
    before = counts(app)
    with app.app_context():
        result = import_region(DEMO.replace("name: 城关镇", "name: 城关镇（新）"))
        assert db.session.execute(db.select(RegionNode.name).filter_by(code="990101")).scalar_one() == "城关镇（新）"
    assert counts(app) == before and result.created == 0


def test_invalid_file_names_line_and_node_and_changes_nothing(app):
    with app.app_context():
        import_region(DEMO)
    before = counts(app)
    broken = DEMO.replace(
        "tier: grid\n            aliases: [西环2网格", "tier: hamlet\n            aliases: [西环2网格"
    )
    with app.app_context(), pytest.raises(RegionFileError) as error:
        import_region(broken)
    assert "990102001002" in str(error.value) and "line" in str(error.value) and "hamlet" in str(error.value)
    assert counts(app) == before


@pytest.mark.parametrize(
    "text,needle",
    [
        ("code: '1'\nname: x\ntier: county\nchildren:\n  - {code: '1', name: y, tier: town}\n", "appears twice"),
        ("code: '1'\nname: x\ntier: town\nchildren:\n  - {code: '2', name: y, tier: county}\n", "cannot sit under"),
        ("code: '1'\nname: x\ntier: county\nmembers:\n  - {name: a, role: boss}\n", "role"),
        ("code: '1'\nname: x\ntier: county\nlat: 123\n", "lat"),
        ("code: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "one mapping"),
    ],
)
def test_validation_messages(text, needle):
    with pytest.raises(RegionFileError, match=needle):
        parse_region_file(text)
