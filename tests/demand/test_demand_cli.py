"""`flask parse` and `flask train-classifier` through the app's CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import demand


@pytest.fixture
def cli(app):
    """The CLI runner; removes any model trained here so other tests keep the built-in parser."""
    demand.reset_parsers()
    yield app.test_cli_runner()
    shutil.rmtree(demand.model_dir_for(app.instance_path), ignore_errors=True)
    demand.reset_parsers()


def test_parse_text_prints_one_json_object(region, cli) -> None:
    result = cli.invoke(args=["parse", "阳光花园5号楼有人闻到很浓的煤气味，好像是502在漏气，电话13800000001"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["category"] == "城乡建设"
    assert data["urgency"] == "urgent"
    assert data["grid"] == "990101001001"
    assert data["location"]["building"] == "5" and data["location"]["room"] == "502"
    assert data["contacts"] == [{"kind": "phone", "value": "138****0001"}]
    assert data["missing"] == []
    assert "13800000001" not in result.output


def test_parse_without_a_region_still_answers(app, cli) -> None:
    data = json.loads(cli.invoke(args=["parse", "阳光花园路灯坏了"]).output)
    assert data["grid"] is None and data["missing"] == ["location"]


def test_parse_jsonl_one_object_per_line(region, cli, tmp_path: Path) -> None:
    lines = tmp_path / "in.txt"
    lines.write_text('东大社区3网格路灯坏了\n\n{"text": "我老公打我，在幸福里小区"}\n', encoding="utf-8")
    result = cli.invoke(args=["parse", "--jsonl", str(lines)])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert len(out) == 3
    assert out[0]["grid"] == "990101001003"
    assert out[1]["missing"] == ["matter", "location"]
    assert out[2]["urgency"] == "urgent" and out[2]["grid"] == "990101002001"


def test_parse_needs_text_or_file(app, cli) -> None:
    assert cli.invoke(args=["parse"]).exit_code != 0


def test_train_classifier_reports_and_saves_a_model_in_use(app, cli, tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    rows = [(f"小区又停水了第{i}次，水压低", "城乡建设") for i in range(12)]
    rows += [(f"晚上广场舞噪音扰民第{i}天", "环境保护") for i in range(12)]
    with data.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    result = cli.invoke(args=["train-classifier", str(data), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "cross-validated (3-fold) accuracy" in result.output
    assert "macro-F1" in result.output and "环境保护" in result.output
    model_dir = demand.model_dir_for(app.instance_path)
    assert (model_dir / "LATEST").read_text() == "classifier-v0001.pkl"
    # the history behind the model in use is kept for the daily retraining from staff corrections
    assert (model_dir / "history.csv").read_bytes() == data.read_bytes() and "kept" in result.output
    parsed = json.loads(cli.invoke(args=["parse", "楼里停水了"]).output)
    assert parsed["category"] == "城乡建设"


def test_train_classifier_rejects_a_bad_file(app, cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("body,kind\nx,y\n", encoding="utf-8")
    result = cli.invoke(args=["train-classifier", str(bad)])
    assert result.exit_code != 0
    assert "text,label" in result.output
