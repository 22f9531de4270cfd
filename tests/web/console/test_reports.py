"""reports.ledger and workflow.queue pieces that need no HTTP."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from reports.ledger import LEDGER_COLUMNS, corrections_csv, ledger_xlsx
from workflow.queue import QueueFilters, routing_reason, span_text, time_left

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_ledger_cells_that_look_like_formulas_stay_text():
    row = ['=HYPERLINK("http://evil")', "+1", "@SUM(A1)", "正常\x07文本", 3] + [""] * (len(LEDGER_COLUMNS) - 5)
    sheet = load_workbook(io.BytesIO(ledger_xlsx("台账", [row]))).active
    cells = [sheet.cell(row=3, column=c) for c in range(1, 6)]
    assert [c.data_type for c in cells[:4]] == ["s", "s", "s", "s"]
    assert cells[0].value == '=HYPERLINK("http://evil")' and cells[3].value == "正常文本" and cells[4].value == 3


def test_corrections_csv_quotes_commas_and_has_the_training_header():
    text = corrections_csv([("路灯不亮，很黑, 真的", "城乡建设")])
    assert text.splitlines() == ["text,label", '"路灯不亮，很黑, 真的",城乡建设']


def test_time_left_words():
    assert time_left(None, NOW) == ("无时限", "none")
    assert time_left(NOW + timedelta(days=2, hours=3), NOW) == ("剩余 2天3小时", "ok")
    assert time_left(NOW + timedelta(hours=2, minutes=5), NOW) == ("剩余 2小时5分", "soon")
    assert time_left(NOW - timedelta(minutes=30), NOW) == ("已超时 30分钟", "overdue")
    assert span_text(timedelta(seconds=59)) == "0分钟"


def test_queue_filters_from_query_strings():
    filters = QueueFilters.from_args({"status": "bogus", "urgency": "urgent", "page": "x", "date_from": "2026-13-01"})
    assert filters.status == "open" and filters.urgency == "urgent" and filters.page == 1
    assert set(filters.errors) == {"状态", "页码", "日期"}
    assert QueueFilters.from_args({"per_page": "100000"}).per_page == 100
    assert QueueFilters.from_args({"q": "路灯", "overdue": "1"}).as_args(page=2) == {
        "q": "路灯",
        "overdue": "1",
        "page": "2",
    }


def test_routing_reasons_in_words():
    assert routing_reason("grid") == "诉求地点所在网格"
    assert routing_reason("grid+rule") == "诉求地点所在网格，按类别规则上提"
    assert routing_reason(None) == ""
