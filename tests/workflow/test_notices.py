"""Residents and notices: 退订通知 / 订阅通知, subscribe/unsubscribe, the menu (`flask sync-menu`)."""

from __future__ import annotations

from sqlalchemy import select

from cli.menu import DEFAULT_MENU
from models import AuditEvent, Resident, db
from tests.support.broadcasts import CHENGGUAN, auth, notice, token_for
from tests.support.wechat_push import encrypted_push, event_xml, text_xml


def push(client, xml: str) -> None:
    query, body = encrypted_push(xml)
    assert client.post(f"/wechat/mp?{query}", data=body, content_type="text/xml").get_data(as_text=True) == "success"


def replies_to(fake_api, openid: str) -> list[str]:
    return [c.body["text"]["content"] for c in fake_api.sent() if c.body["touser"] == openid]


def resident(app, openid: str) -> Resident:
    with app.app_context():
        return db.session.execute(select(Resident).filter_by(openid=openid)).scalar_one()


def test_opting_out_stops_notices_but_never_work_order_replies(region, client, fake_api, run_jobs):
    push(client, text_xml("oZhang", "阳光花园3号楼门口路灯不亮", 9001))
    push(client, text_xml("oZhang", "退订通知", 9002))
    run_jobs()
    assert resident(region, "oZhang").notices is False
    assert any("已为您退订政策通知" in text for text in replies_to(fake_api, "oZhang"))

    # A broadcast to the resident's town skips them, counted as opted out...
    token = token_for(region, "admin", "990100")
    created = client.post(
        "/api/broadcasts", json=notice([CHENGGUAN], ["resident"], ["mp"], dry_run=True), headers=auth(token)
    )
    assert created.get_json()["counts"]["mp"]["skipped"]["opted_out"] == 1
    # ...while a new demand is still acknowledged.
    push(client, text_xml("oZhang", "幸福里小区门口垃圾堆了好几天没人清理", 9003))
    run_jobs()
    assert sum("工单号" in text for text in replies_to(fake_api, "oZhang")) == 2

    push(client, text_xml("oZhang", "订阅通知", 9004))
    run_jobs()
    assert resident(region, "oZhang").notices is True
    assert any("已为您订阅政策通知" in text for text in replies_to(fake_api, "oZhang"))
    with region.app_context():
        actions = list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())
    assert "notices.opted_out" in actions and "notices.opted_in" in actions


def test_menu_clicks_opt_out_and_list_recent_notices(region, client, fake_api, run_jobs):
    push(client, text_xml("oLi", "阳光花园路灯坏了", 9101))
    run_jobs()
    token = token_for(region, "admin", "990100")
    assert (
        client.post("/api/broadcasts", json=notice([CHENGGUAN], ["resident"], ["mp"]), headers=auth(token)).status_code
        == 201
    )
    run_jobs()
    push(client, event_xml("oLi", "CLICK", create_time=1714036601, EventKey="NOTICES"))
    run_jobs()
    assert any("防汛预警" in text for text in replies_to(fake_api, "oLi"))
    push(client, event_xml("oLi", "CLICK", create_time=1714036602, EventKey="NOTICES_OFF"))
    run_jobs()
    assert resident(region, "oLi").notices is False


def test_unsubscribing_takes_a_resident_out_of_the_audience(region, client, fake_api, run_jobs):
    push(client, text_xml("oWang", "东大菜市场门口污水横流", 9201))
    push(client, event_xml("oWang", "unsubscribe", create_time=1714036700))
    run_jobs()
    assert resident(region, "oWang").subscribed is False and resident(region, "oWang").mp_tag_dirty is True
    token = token_for(region, "admin", "990100")
    counted = client.post(
        "/api/broadcasts", json=notice([CHENGGUAN], ["resident"], ["mp"], dry_run=True), headers=auth(token)
    )
    assert counted.get_json()["counts"]["mp"]["skipped"]["unsubscribed"] == 1
    assert counted.get_json()["counts"]["mp"]["total"] == 0


def test_sync_menu_creates_the_default_menu(app, fake_api, tmp_path):
    result = app.test_cli_runner().invoke(args=["sync-menu"])
    assert result.exit_code == 0, result.output
    [menu] = fake_api.mass.menus
    assert [b["name"] for b in menu["button"]] == ["报事", "我的诉求", "政策通知"]
    assert {s["key"] for s in menu["button"][2]["sub_button"]} == {"NOTICES", "NOTICES_ON", "NOTICES_OFF"}
    assert DEFAULT_MENU.exists()

    bad = tmp_path / "menu.yaml"
    bad.write_text("button:\n  - {type: click, name: 这是一个非常长的菜单名字}\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["sync-menu", "--file", str(bad)])
    assert result.exit_code != 0 and "bytes" in result.output and "key" in result.output
    assert len(fake_api.mass.menus) == 1
