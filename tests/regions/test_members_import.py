"""import-members: a roster spreadsheet (xlsx or csv) with Chinese headers; errors by row; all or nothing."""

from __future__ import annotations

import openpyxl
import pytest

from models import Member, db
from regions.members import RosterError, import_members


def write_xlsx(path, rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def members() -> dict[str, Member]:
    return {m.wecom_userid or m.name: m for m in db.session.execute(db.select(Member)).scalars()}


def test_xlsx_roster_adds_updates_moves_and_replaces_the_listed_grids(region, tmp_path):
    path = write_xlsx(
        tmp_path / "花名册.xlsx",
        [
            ["姓名", "角色", "网格", "企业微信账号", "手机"],
            ["张维印", "网格员", "990101001001", "zhangwy", 13800000099],  # mobile typed as a number
            ["钱晓峰", "信息员", "东大社区第一网格", "qianxf", "13800000031"],
            [None, None, None, None, None],
            ["赵志刚", "grid_officer", "东大社区第一网格", "zhaozg", "13800000007"],  # moves from the second grid
        ],
    )
    with region.app_context():
        result = import_members(path)
        found = members()
        assert found["zhangwy"].mobile == "13800000099" and found["zhangwy"].active
        assert found["qianxf"].node.code == "990101001001" and found["qianxf"].role == "info_officer"
        assert found["zhaozg"].node.code == "990101001001"
        assert not found["lixl"].active  # on the listed grid, no longer on its roster
        assert found["sunlj"].active  # her grid is not in this roster: untouched
    assert (len(result.added), len(result.deactivated), result.rows) == (1, 1, 3)


def test_csv_roster_in_gbk_with_errors_names_every_bad_row_and_changes_nothing(region, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(
        (
            "姓名,角色,所属网格,企业微信,手机号\n"
            "张维印,网格员,990101001001,zhangwy,13800000005\n"
            ",网格员,990101001001,,\n"
            "李四,队长,990101001001,lisi,13800000040\n"
            "王五,网格员,不存在网格,wangwu,12345\n"
            "赵六,信息员,990101001002,zhangwy,\n"
        ).encode("gb18030")
    )
    with region.app_context():
        before = {k: (m.node_id, m.active, m.mobile) for k, m in members().items()}
        with pytest.raises(RosterError) as error:
            import_members(path)
        assert {k: (m.node_id, m.active, m.mobile) for k, m in members().items()} == before
    problems = error.value.problems
    assert [p.split("：", 1)[0] for p in problems] == ["第 3 行", "第 4 行", "第 5 行", "第 6 行"]
    assert "缺少姓名" in problems[0]
    assert "角色「队长」无法识别" in problems[1]
    assert "找不到网格「不存在网格」" in problems[2] and "手机号「12345」格式不正确" in problems[2]
    assert "与第 2 行重复" in problems[3]


def test_missing_header_and_unknown_file_types_are_explained(region, tmp_path):
    with region.app_context():
        with pytest.raises(RosterError, match="缺少列：角色"):
            import_members(write_xlsx(tmp_path / "a.xlsx", [["姓名", "网格"], ["张三", "990101001001"]]))
        with pytest.raises(RosterError, match="不支持的文件类型"):
            import_members(tmp_path / "a.txt")


def test_cli_dry_run_reports_and_changes_nothing(region, tmp_path):
    path = write_xlsx(
        tmp_path / "r.xlsx",
        [["name", "role", "grid", "wecom_userid", "mobile"], ["钱晓峰", "信息员", "990101001001", "qianxf", ""]],
    )
    runner = region.test_cli_runner()
    dry = runner.invoke(args=["import-members", "--dry-run", str(path)])
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing changed: 1 rows; 1 members added" in dry.output and "钱**" in dry.output
    with region.app_context():
        assert "qianxf" not in members()
    real = runner.invoke(args=["import-members", str(path)])
    assert real.exit_code == 0 and "imported: 1 rows" in real.output
    with region.app_context():
        assert members()["qianxf"].active
    bad = runner.invoke(
        args=["import-members", str(write_xlsx(tmp_path / "b.xlsx", [["姓名", "角色", "网格"], ["a", "b", "c"]]))]
    )
    assert bad.exit_code == 1 and "第 2 行" in bad.output
