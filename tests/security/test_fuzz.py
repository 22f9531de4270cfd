"""Fuzzing, bounded in time: hypothesis against the three webhooks and the demand parser; atheris
(coverage-guided, in a subprocess because libFuzzer ends its process) against /wechat/mp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demand import DemandParser
from tests.support import figures
from tests.support.corpus import (
    APP,
    BOT,
    MP,
    app_envelope,
    bot_envelope,
    mp_plain,
    mp_safe,
    work_query,
)
from tests.support.wecom_push import wecom_settings

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))

_FIELDS = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Content",
    "MsgId",
    "Event",
    "EventKey",
    "Encrypt",
    "Location_X",
    "Recognition",
    "PicUrl",
    "AgentID",
]
_xml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
_element = st.builds(
    lambda name, value, cdata: f"<{name}><![CDATA[{value.replace(']]>', '')}]]></{name}>"
    if cdata
    else f"<{name}>{value}</{name}>",
    st.sampled_from(_FIELDS) | st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
    _xml_text,
    st.booleans(),
)
_xml_push = st.builds(lambda parts: "<xml>" + "".join(parts) + "</xml>", st.lists(_element, max_size=12))
_bodies = _xml_push.map(str.encode) | st.binary(max_size=600) | _xml_text.map(str.encode)


@pytest.fixture
def endpoints(app, monkeypatch):
    for key, value in wecom_settings().items():
        monkeypatch.setitem(app.config, key, value)
    monkeypatch.setitem(app.config, "RATE_LIMIT_REFUSED_IP", 10**9)
    monkeypatch.setitem(app.config, "RATE_LIMIT_OPENID", 10**9)
    # 兼容模式, so the plaintext parser is fuzzed too (in safe mode plaintext is refused before parsing).
    monkeypatch.setitem(app.config, "WECHAT_MSG_MODE", "compatible")
    return app


def test_fuzz_the_webhooks_never_answer_5xx(endpoints):
    client = endpoints.test_client()
    seen = {"n": 0, "stored": 0, "bad": 0}

    @settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(
        endpoint=st.sampled_from([MP, "mp-aes", APP, BOT]),
        body=_bodies,
        encrypt=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=200),
    )
    def fuzz(endpoint, body, encrypt):
        seen["n"] += 1
        if endpoint == MP:
            query, data, kind = *mp_plain(body), "text/xml"
        elif endpoint == "mp-aes":
            (query, _), data, kind = mp_safe(encrypt), body, "text/xml"
            endpoint = MP
        elif endpoint == APP:
            query, data, kind = work_query(encrypt), body if body[:1] == b"<" else app_envelope(encrypt), "text/xml"
        else:
            query, data, kind = (
                work_query(encrypt, bot=True),
                body if body[:1] == b"{" else bot_envelope(encrypt),
                ("application/json"),
            )
        response = client.post(f"{endpoint}?{query}", data=data, content_type=kind)
        if response.status_code >= 500:
            seen["bad"] += 1
        if response.status_code == 200:
            seen["stored"] += 1
        assert response.status_code < 500, (endpoint, data[:200], response.get_data()[:200])

    try:
        fuzz()
    finally:
        figures.record(
            "input",
            "hypothesis fuzz: /wechat/mp, /wechat/work, /wechat/work/bot",
            tried=seen["n"],
            accepted=seen["bad"],
            note=f"{EXAMPLES} examples, derandomized; 'wrongly accepted' = 5xx answers; "
            f"{seen['stored']} well-formed signed plaintext pushes were legitimately stored",
            test="tests/security/test_fuzz.py",
        )


_PIECES = st.sampled_from(
    [
        "阳光花园",
        "5号楼",
        "二单元",
        "502",
        "【事项】",
        "【地点】",
        "【电话】",
        "13800138000",
        "路灯坏了",
        "紧急",
        "煤气味",
        "'; DROP TABLE",
        "<script>",
        "\u202e",
        "\x00",
        "\n",
        "１２３",
    ]
)
_texts = st.lists(_PIECES | st.text(max_size=20), max_size=15).map("".join) | st.text(max_size=300)


@pytest.fixture(scope="module")
def parser():
    return DemandParser()


def test_fuzz_demand_parsing_never_raises(parser):
    seen = {"n": 0}

    @settings(max_examples=EXAMPLES * 2, deadline=1000, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(text=_texts)
    def fuzz(text):
        seen["n"] += 1
        demand = parser.parse(text)
        json.dumps(demand.to_dict() if hasattr(demand, "to_dict") else str(demand), ensure_ascii=False)

    try:
        fuzz()
    finally:
        figures.record(
            "input",
            "hypothesis fuzz: demand parser",
            tried=seen["n"],
            note="no exception, JSON-serialisable result",
            test="tests/security/test_fuzz.py",
        )


@pytest.mark.slow
def test_atheris_fuzz_of_the_official_account_webhook(tmp_path):
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.skip("atheris is not installed (pip install atheris==3.0.0; it ships cp311 manylinux wheels)")
    runs = int(os.environ.get("ATHERIS_RUNS", "3000"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.security.atheris_webhook",
            f"-runs={runs}",
            "-max_total_time=40",
            f"-artifact_prefix={tmp_path}/",
            "-rss_limit_mb=4096",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "INSTANCE_PATH": str(tmp_path)},
    )
    done = [line for line in result.stderr.splitlines() if line.startswith("Done ")]
    executed = int(done[-1].split()[1]) if done else 0
    figures.record(
        "input",
        "atheris fuzz (coverage-guided): /wechat/mp",
        tried=executed,
        accepted=0 if result.returncode == 0 else 1,
        note="libFuzzer runs; 'wrongly accepted' = a crash or 5xx",
        test="tests/security/test_fuzz.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert executed > 0, result.stderr[-2000:]
