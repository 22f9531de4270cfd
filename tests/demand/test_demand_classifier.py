"""The trainable classifier: train on small generated data, save versioned, load, replace atomically."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from demand import DemandParser, Gazetteer
from demand.classifier import LATEST_FILE, ModelConfig, latest_path, latest_stamp, load_latest, save_model
from demand.training import TrainingDataError, read_training_csv, train

# Tiny synthetic "county history": each label has its own vocabulary plus shared filler, so a model can
# learn it in milliseconds. Labels are deliberately the county's own, not the default taxonomy's.
_VOCAB = {
    "水务": ["停水", "水压低", "水管爆了", "自来水发黄", "水表"],
    "环卫": ["垃圾没人清", "垃圾桶满了", "清扫", "垃圾站臭"],
    "城管": ["占道经营", "流动摊贩", "乱摆摊", "店外经营"],
}
_FILLER = ["你好", "请尽快处理", "在小区门口", "好几天了", "谢谢", "麻烦看看", "我们楼下"]


def _synthetic(n_per_label: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in _VOCAB.items():
        for _ in range(n_per_label):
            parts = rng.sample(_FILLER, 2) + rng.sample(words, 2)
            rng.shuffle(parts)
            texts.append("，".join(parts))
            labels.append(label)
    return texts, labels


def _write_csv(path: Path, texts: list[str], labels: list[str], header: tuple[str, str] = ("text", "label")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(zip(texts, labels, strict=True))
    return path


def test_train_reports_cross_validated_scores_and_progress() -> None:
    texts, labels = _synthetic(30)
    seen: list[tuple[int, int, str]] = []
    model, report = train(texts, labels, folds=3, progress=lambda d, t, w: seen.append((d, t, w)))
    assert report.folds == 3
    assert report.accuracy is not None and report.accuracy > 0.9
    assert report.macro_f1 is not None and report.macro_f1 > 0.9
    assert {s.label for s in report.per_category} == set(_VOCAB)
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] == 4
    label, confidence = model.predict_one("又停水了，水压低")
    assert label == "水务" and 0.5 < confidence <= 1.0


def test_too_few_examples_skips_cross_validation_and_drops_singletons() -> None:
    model, report = train(
        ["停水了", "又停水", "垃圾没人清", "垃圾站臭", "只有一条"], ["水务", "水务", "环卫", "环卫", "孤例"], folds=5
    )
    assert report.dropped_labels == {"孤例": 1}
    assert report.folds == 2
    assert set(model.labels) == {"水务", "环卫"}


def test_training_needs_two_labels() -> None:
    with pytest.raises(TrainingDataError):
        train(["停水了", "又停水"], ["水务", "水务"])


def test_read_training_csv(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "a.csv", ["停水了", "", "垃圾"], ["水务", "水务", "环卫"])
    assert read_training_csv(path) == (["停水了", "垃圾"], ["水务", "环卫"], 1)
    alias = _write_csv(tmp_path / "b.csv", ["停水了"], ["水务"], header=("text", "category"))
    assert read_training_csv(alias)[1] == ["水务"]
    with pytest.raises(TrainingDataError):
        read_training_csv(_write_csv(tmp_path / "c.csv", ["x"], ["y"], header=("body", "kind")))
    with pytest.raises(TrainingDataError):
        read_training_csv(tmp_path / "missing.csv")


def test_save_versions_and_latest_pointer(tmp_path: Path) -> None:
    texts, labels = _synthetic(10)
    model, _ = train(texts, labels, folds=0)
    first = save_model(model, tmp_path)
    second = save_model(model, tmp_path)
    assert (first.name, second.name) == ("classifier-v0001.pkl", "classifier-v0002.pkl")
    assert (tmp_path / LATEST_FILE).read_text() == second.name
    assert latest_path(tmp_path) == second
    assert first.with_suffix(".json").exists()
    assert not list(tmp_path.glob("*.tmp"))
    for _ in range(6):
        save_model(model, tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == [
        "classifier-v0006.pkl",
        "classifier-v0007.pkl",
        "classifier-v0008.pkl",
    ]
    assert load_latest(tmp_path).metadata["version"] == 8


def test_latest_falls_back_to_the_highest_version(tmp_path: Path) -> None:
    assert latest_stamp(tmp_path) is None and load_latest(tmp_path) is None
    texts, labels = _synthetic(10)
    model, _ = train(texts, labels, folds=0)
    save_model(model, tmp_path)
    (tmp_path / LATEST_FILE).write_text("classifier-v0099.pkl")  # points nowhere: ignored
    assert latest_path(tmp_path).name == "classifier-v0001.pkl"


def test_parser_uses_the_model_and_keeps_the_lexicon_as_fallback(tmp_path: Path) -> None:
    # A model trained on the default taxonomy's first levels takes over when it is sure.
    texts = [
        "小区停水三天了",
        "自来水发黄",
        "水压太低",
        "又停水了没通知",
        "垃圾桶满了没人清",
        "垃圾站太臭了",
        "广场舞太吵",
        "半夜施工噪音",
        "烧烤油烟太大",
        "KTV扰民睡不着",
    ] * 4
    labels = ["城乡建设"] * 6 * 1 + ["环境保护"] * 4
    labels = labels * 4
    model, _ = train(texts, labels, folds=0, config=ModelConfig(min_df=1))
    save_model(model, tmp_path)
    parser = DemandParser(gazetteer=Gazetteer(), model_dir=tmp_path)
    assert parser.model is not None
    demand = parser.parse("楼里又停水了")
    assert demand.category == "城乡建设"
    assert demand.classifier in ("model", "lexicon")
    # Not recognisable by the model's vocabulary, but the lexicon knows it.
    assert parser.parse("村干部贪污扶贫款").category == "纪检监察"


def test_corrupt_model_file_falls_back_to_the_lexicon(tmp_path: Path) -> None:
    (tmp_path / "classifier-v0001.pkl").write_bytes(b"not a pickle")
    parser = DemandParser(gazetteer=Gazetteer(), model_dir=tmp_path)
    assert parser.model is None
    assert parser.parse("路灯坏了").category == "城乡建设"


def test_retrained_model_is_picked_up(tmp_path: Path) -> None:
    parser = DemandParser(gazetteer=Gazetteer(), model_dir=tmp_path)
    assert parser.model is None
    texts, labels = _synthetic(10)
    model, _ = train(texts, labels, folds=0)
    save_model(model, tmp_path)
    assert parser.reload_model()
    assert parser.model.labels == sorted(_VOCAB)


def test_fast_ngram_features_match_scikit_learn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from demand.features import CharNgramTfidf

    texts, _ = _synthetic(5)
    ours = CharNgramTfidf(min_df=1, top_k=None).fit_transform(texts)
    theirs = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=1).fit_transform(texts)
    assert ours.shape == theirs.shape
    assert np.abs(np.sort(ours.data) - np.sort(theirs.data)).max() < 1e-6


def test_longer_ngrams_are_hashed_apart_from_short_ones() -> None:
    from demand.features import ngram_ids

    ids, docs = ngram_ids(["停水了吗", "停水"], 1, 5)
    assert len(ids) == len(docs) == (4 + 3 + 2 + 1) + (2 + 1)
    assert len(set(ids[docs == 0].tolist())) == 10  # every n-gram of the first text is distinct
    assert set(ids[docs == 1].tolist()) <= set(ids[docs == 0].tolist())


def test_corpus_fit_equals_pipeline_fit() -> None:
    from demand.classifier import Corpus, _decision_matrix, build_pipeline

    texts, labels = _synthetic(20)
    y = np.array(labels)
    rows, other = np.arange(0, len(texts), 2), np.arange(1, len(texts), 2)
    config = ModelConfig(top_k=200)
    pipeline, decide = Corpus(texts, config).fit(rows, y[rows])
    reference = build_pipeline(config, len(rows)).fit([texts[i] for i in rows], y[rows])
    held_out = [texts[i] for i in other]
    assert np.allclose(decide(other), _decision_matrix(reference, held_out))
    assert np.allclose(_decision_matrix(pipeline, held_out), _decision_matrix(reference, held_out))
