"""Retraining from staff corrections: a new model replaces the old only if it does as well on the fixed fold."""

from __future__ import annotations

import random
from pathlib import Path

from demand.classifier import LATEST_FILE, ModelConfig
from demand.model_selection import CandidateScore, choose
from demand.training import apply_corrections, in_validation_fold, retrain_if_better

_VOCAB = {
    "水务": ["停水", "水压低", "水管爆了", "自来水发黄", "水表走得快"],
    "环卫": ["垃圾没人清", "垃圾桶满了", "没人清扫", "垃圾站很臭"],
    "城管": ["占道经营", "流动摊贩", "乱摆摊", "店外经营"],
}
_FILLER = ["你好", "请尽快处理", "在小区门口", "好几天了", "谢谢", "麻烦看看", "我们楼下", "三号楼", "东门"]


def _history(n_per_label: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in _VOCAB.items():
        for i in range(n_per_label):
            parts = [*rng.sample(_FILLER, 2), *rng.sample(words, 2), f"第{i}次"]
            rng.shuffle(parts)
            texts.append("，".join(parts))
            labels.append(label)
    return texts, labels


def test_the_validation_fold_is_fixed_by_the_text() -> None:
    texts, _ = _history(60)
    first = [in_validation_fold(t) for t in texts]
    assert first == [in_validation_fold(t) for t in texts]
    assert 0.1 < sum(first) / len(first) < 0.3


def test_corrections_relabel_and_extend_the_history() -> None:
    corrections = [("停水了", "水务"), ("乱摆摊", "城管")]
    texts, labels = apply_corrections(["停水了", "垃圾没人清"], ["环卫", "环卫"], corrections)
    assert texts == ["停水了", "垃圾没人清", "乱摆摊"]
    assert labels == ["水务", "环卫", "城管"]


def test_a_worse_model_does_not_replace_the_one_in_use(tmp_path: Path) -> None:
    texts, labels = _history(60)
    first = retrain_if_better(texts, labels, tmp_path, folds=2)
    assert first.replaced and first.reason == "no model in use"
    assert (tmp_path / LATEST_FILE).read_text() == "classifier-v0001.pkl"

    # "Corrections" that scramble the training labels make a worse model: it must not go into use.
    rng = random.Random(1)
    scrambled = [(t, rng.choice(list(_VOCAB))) for t in texts if not in_validation_fold(t)]
    worse = retrain_if_better(texts, labels, tmp_path, corrections=scrambled, folds=2)
    assert worse.current_macro_f1 is not None and worse.new_macro_f1 is not None
    assert worse.new_macro_f1 < worse.current_macro_f1
    assert not worse.replaced and worse.model_path is None
    assert (tmp_path / LATEST_FILE).read_text() == "classifier-v0001.pkl"

    # The same data again scores the same: "at least as well" replaces.
    same = retrain_if_better(texts, labels, tmp_path, folds=2)
    assert same.replaced and same.new_macro_f1 >= same.current_macro_f1
    assert (tmp_path / LATEST_FILE).read_text() == "classifier-v0002.pkl"
    assert same.to_dict()["n_validation"] == same.n_validation > 0


def test_choose_ships_the_baseline_unless_the_margin_beats_the_spread() -> None:
    baseline = CandidateScore("baseline", ModelConfig(), [0.88, 0.90, 0.89, 0.91])
    close = CandidateScore("fancy", ModelConfig(), [0.89, 0.91, 0.90, 0.92])
    clear = CandidateScore("better", ModelConfig(), [0.93, 0.95, 0.94, 0.96])
    assert choose([baseline, close]).chosen is baseline
    assert choose([baseline, close, clear]).chosen is clear
    # Two candidates past the baseline and within noise of each other: the simpler (listed first) ships.
    clear_twin = CandidateScore("better, more complex", ModelConfig(), [0.935, 0.955, 0.945, 0.965])
    assert choose([baseline, clear, clear_twin]).chosen is clear


def test_nb_svm_model_trains_predicts_and_round_trips(tmp_path: Path) -> None:
    from demand.classifier import TextClassifier, load_latest, save_model

    texts, labels = _history(30)
    model = TextClassifier.fit(texts, labels, ModelConfig(nb_weighting=True, keyword_weight=0.0, profile_weight=0.0))
    assert model.predict_one("又停水了，水压低")[0] == "水务"
    assert model.predict_one("门口有流动摊贩乱摆摊")[0] == "城管"
    save_model(model, tmp_path)
    again = load_latest(tmp_path)
    assert again is not None
    probe = ["垃圾桶满了没人清扫", "自来水发黄"]
    assert [label for label, _ in again.predict(probe)] == [label for label, _ in model.predict(probe)]
