"""A retrained model reaches every process at once, like a re-imported region: train-classifier bumps the map
version in Redis, and the next get_parser call (once per intake batch) rebuilds with the new model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import demand
from handlers.parsing import get_parser, parser_version
from ops.map_version import MAP_VERSION_KEY


def test_train_classifier_bumps_the_version_and_the_next_parser_uses_the_model(app, tmp_path: Path) -> None:
    redis = app.extensions["redis"]
    data = tmp_path / "history.csv"
    rows = [(f"小区又停水了第{i}次，水压低", "城乡建设") for i in range(12)]
    rows += [(f"晚上广场舞噪音扰民第{i}天", "环境保护") for i in range(12)]
    with data.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    try:
        with app.app_context():
            before = get_parser(app.instance_path)
            assert parser_version() == "" and redis.get(MAP_VERSION_KEY) is None
        result = app.test_cli_runner().invoke(args=["train-classifier", str(data), "--folds", "3"])
        assert result.exit_code == 0, result.output
        assert redis.get(MAP_VERSION_KEY) == b"1"
        with app.app_context():
            after = get_parser(app.instance_path)
            assert after is not before and parser_version() == "1"
            assert get_parser(app.instance_path) is after  # unchanged version: the cached parser, no rebuild
    finally:
        shutil.rmtree(demand.model_dir_for(app.instance_path), ignore_errors=True)
        demand.reset_parsers()
