"""Masking normalises before matching: full-width digits, numbers with spaces or dashes, 〇一二… numerals;
a reporter's name is masked wherever it appears; CSV exports neutralise formulas. Checked on the
functions and on what a masked role actually sees (ticket page, API, corrections CSV)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from models import Ticket, TicketReporter, db, utcnow
from ops.privacy import csv_cell, mask_text
from tests.support.broadcasts import auth, token_for
from tests.web.console.helpers import new_ticket, signed_in


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("电话１３９１２３４５６７８", "12345678"),
        ("电话 139 1234 5678", "1234 5"),
        ("电话139-1234-5678", "1234-5"),
        ("电话 139－1234－5678", "1234－5"),
        ("电话一三九一二三四五六七八", "一二三四五"),
        ("幺三九 一二三四 五六七八", "一二三四"),
        ("电话：+86 139 1234 5678", "1234 5"),
        ("身份证１１０１０５１９４９１２３１００２Ｘ", "１９４９"),
        ("座机０５７１－８８８８６６６６", "８８８８６"),
    ],
)
def test_numbers_are_masked_however_they_are_written(text, hidden):
    masked = mask_text(text)
    assert hidden not in masked and "****" in masked, masked


@pytest.mark.parametrize("text", ["东大一网格3号楼", "2026-11-24 下午三点", "工单261204000001", "欠薪12000元"])
def test_ordinary_numbers_stay_readable(text):
    assert mask_text(text) == text


def test_the_reporters_name_is_masked_wherever_it_appears():
    text = "我是王秀英，王 秀英的电话在上面，王秀英家住3楼"
    masked = mask_text(text, names=["王秀英"])
    assert "秀英" not in masked and masked.count("王**") == 3


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "＝1"])
def test_csv_cells_that_would_run_as_formulas_are_neutralised(value):
    assert csv_cell(value).startswith("'")
    assert csv_cell("普通文字") == "普通文字"


def _ticket_with_name(app, text: str) -> int:
    ticket_id = new_ticket(app, text, utcnow() - timedelta(hours=1), "oMasked")
    with app.app_context():
        reporter = db.session.execute(db.select(TicketReporter).filter_by(ticket_id=ticket_id)).scalar_one()
        reporter.name = "王秀英"
        db.session.commit()
    return ticket_id


def test_a_masked_role_sees_no_number_and_no_name_on_the_page_or_the_api(region, client):
    text = "阳光花园3号楼路灯坏了，我是王秀英，电话１３９ １２３４ ５６７８"
    ticket_id = _ticket_with_name(region, text)
    viewer, _ = signed_in(region, "viewer1", "viewer", "990101")
    page = viewer.get(f"/console/tickets/{ticket_id}").get_data(as_text=True)
    assert "王秀英" not in page and "１２３４ ５６７８" not in page and "５６７８" in page or "5678" in page
    body = client.get(f"/api/tickets/{ticket_id}", headers=auth(token_for(region, "department", "990101"))).get_json()
    assert "王秀英" not in str(body) and "１２３４" not in str(body)
    # staff who call residents back see it all
    staff = client.get(f"/api/tickets/{ticket_id}", headers=auth(token_for(region, "staff", "990101"))).get_json()
    assert "王秀英" in staff["description"]


def test_the_corrections_csv_masks_and_neutralises(region):
    ticket_id = _ticket_with_name(region, '=HYPERLINK("http://evil") 阳光花园路灯坏了 王秀英 13912345678')
    client, token = signed_in(region, "liuhm", "staff", "990101")
    response = client.post(
        f"/console/tickets/{ticket_id}/correct",
        data={"csrf_token": token, "category": "城乡建设", "urgency": "urgent"},
    )
    assert response.status_code == 303
    rows = list(csv.reader(io.StringIO(client.get("/console/export/corrections.csv").get_data(as_text=True))))
    [row] = rows[1:]
    assert row[0].startswith("'=") and "王秀英" not in row[0] and "12345678" not in row[0]
    with region.app_context():
        assert db.session.get(Ticket, ticket_id).category == "城乡建设"
