"""The Flask CLI contract: import-region, create-user, create-token."""

from __future__ import annotations

from pathlib import Path

from models import AuditEvent, RegionNode, User, db

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo_region.yaml"


def test_import_region_then_create_user_and_token_that_the_api_accepts(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["import-region", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "nodes created" in result.output
    result = runner.invoke(args=["create-user", "wang", "--role", "staff", "--region", "990101", "--password", "pw1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["create-token", "wang"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    response = app.test_client().get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username="wang")).scalar_one()
        assert user.password_hash.startswith("scrypt:") and "pw1" not in user.password_hash
        actions = db.session.execute(db.select(AuditEvent.action)).scalars().all()
    assert {"region.imported", "user.created", "token.created"} <= set(actions)


def test_invalid_region_file_exits_nonzero_with_the_line(app, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "code: '1'\nname: x\ntier: county\nchildren:\n  - {code: '2', name: y, tier: nowhere}\n", encoding="utf-8"
    )
    result = app.test_cli_runner().invoke(args=["import-region", str(bad)])
    assert result.exit_code == 1
    assert "line 5" in result.output and "nowhere" in result.output
    with app.app_context():
        assert db.session.execute(db.select(RegionNode)).first() is None


def test_create_user_needs_a_known_region(app):
    result = app.test_cli_runner().invoke(args=["create-user", "li", "--role", "viewer", "--region", "000"])
    assert result.exit_code != 0 and "no region node" in result.output


def test_load_demo_region_only_on_an_empty_database(app):
    runner = app.test_cli_runner()
    assert "nodes created" in runner.invoke(args=["load-demo-region"]).output
    assert "already present" in runner.invoke(args=["load-demo-region"]).output
