"""`flask check-config` refuses production settings with debug on, a default secret, or SQLite behind
several web processes: exit status 1 and every reason."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config import production_problems

PROJECT = Path(__file__).resolve().parents[2]
GOOD_SECRET = secrets.token_hex(32)


def check(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "FLASK_", "WEB_", "DATABASE_", "SECRET"))}
    return subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "app", "check-config"],
        cwd=PROJECT,
        env={**base, "INSTANCE_PATH": str(tmp_path), "APP_ENV": "production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "reasons"),
    [
        ({"SECRET_KEY": ""}, ["SECRET_KEY is empty"]),
        ({"SECRET_KEY": "changeme"}, ["placeholder"]),
        ({"SECRET_KEY": GOOD_SECRET, "FLASK_DEBUG": "1"}, ["debug mode is on"]),
        ({"SECRET_KEY": GOOD_SECRET, "WEB_CONCURRENCY": "4"}, ["SQLite with WEB_CONCURRENCY=4"]),
        (
            {"SECRET_KEY": "dev", "FLASK_DEBUG": "true", "WEB_CONCURRENCY": "3"},
            ["debug mode is on", "placeholder", "SQLite with WEB_CONCURRENCY=3"],
        ),
    ],
)
def test_check_config_refuses_with_every_reason(tmp_path, env, reasons):
    result = check(tmp_path, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for reason in reasons:
        assert reason in result.stderr


def test_check_config_passes_good_production_settings(tmp_path):
    result = check(tmp_path, SECRET_KEY=GOOD_SECRET, WEB_CONCURRENCY="2")  # two share SQLite well
    assert result.returncode == 0, result.stderr
    assert "configuration OK for production" in result.stdout


def test_postgres_allows_several_web_processes():
    settings = {"SECRET_KEY": GOOD_SECRET, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://db/civic"}
    assert production_problems(settings, {"WEB_CONCURRENCY": "8"}) == []
    assert production_problems({**settings, "SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"}, {"WEB_CONCURRENCY": "8"})
