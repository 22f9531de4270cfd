"""parse: show what the demand parser makes of a text; train-classifier: train the county's own model."""

from __future__ import annotations

import json
import shutil
import sys
import time
import unicodedata
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

import demand
from ops.map_version import bump_map_version

# Below this cross-validated macro-F1 the command says plainly that the model is weak.
WEAK_MODEL_F1 = 0.6


def _region_tree() -> dict | None:
    # Imported here, not at module top: models import the app's db, and cli modules are imported while
    # the app is still being built (see cli.register_commands).
    from models.region import region_tree

    return region_tree()


def _parser() -> demand.DemandParser:
    return demand.get_parser(current_app.instance_path, _region_tree())


def _pad(text: str, width: int) -> str:
    # Chinese characters take two columns in a terminal; pad by display width, not by len().
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - shown, 1)


def _echo_json(data: dict) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


@click.command("parse")
@click.argument("text", required=False)
@click.option(
    "--jsonl",
    "jsonl",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="Parse every line of FILE ('-' for stdin); one JSON object per line.",
)
@click.option("--grid", "reporter_grid", default=None, help="The reporter's known grid code, if any.")
@click.option("--unmasked", is_flag=True, default=False, help="Show contacts unmasked (handle with care).")
@with_appcontext
def parse_command(text: str | None, jsonl, reporter_grid: str | None, unmasked: bool) -> None:
    """Parse TEXT (or each line of --jsonl FILE) into a structured demand, printed as JSON."""
    if text is None and jsonl is None:
        raise click.UsageError("give a TEXT or --jsonl FILE")
    parser = _parser()
    if jsonl is None:
        _echo_json(parser.parse(text, reporter_grid=reporter_grid).to_dict(masked=not unmasked))
        return
    for line in jsonl:
        line = line.rstrip("\r\n")
        # A JSON line ({"text": ...} or "...") is read as such; anything else is the text itself.
        if line.startswith(("{", '"')):
            try:
                value = json.loads(line)
                line = value.get("text", "") if isinstance(value, dict) else str(value)
            except (ValueError, AttributeError):
                pass
        _echo_json(parser.parse(line, reporter_grid=reporter_grid).to_dict(masked=not unmasked))
    sys.stdout.flush()


@click.command("train-classifier")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds (0 to skip).")
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Put the new model in use even if it scores below the current one on the validation fold.",
)
@with_appcontext
def train_classifier_command(file: Path, folds: int, force: bool) -> None:
    """Train the category model from FILE.csv (columns text,label); it replaces the model in use only if it
    scores at least as well on the fixed validation fold (one message in five, chosen by its text)."""
    # scikit-learn is imported here, not at module level: every web and worker process registers this
    # command, and loading it costs ~160 MiB each.
    from demand.training import TrainingDataError, read_training_csv, retrain_if_better

    try:
        texts, labels, skipped = read_training_csv(file)
    except TrainingDataError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{len(texts)} messages, {len(set(labels))} labels from {file}"
        + (f" ({skipped} empty rows skipped)" if skipped else "")
    )
    with click.progressbar(
        length=folds + 1, label="training", show_eta=False, show_percent=True, item_show_func=lambda what: what
    ) as bar:
        state = {"done": 0}

        def progress(done: int, total: int, what: str) -> None:
            bar.update(done - state["done"], what)
            state["done"] = done

        started = time.perf_counter()
        try:
            comparison = retrain_if_better(
                texts,
                labels,
                demand.model_dir_for(current_app.instance_path),
                folds=folds,
                progress=progress,
                force=force,
            )
        except TrainingDataError as exc:
            raise click.ClickException(str(exc)) from None
    report = comparison.report
    if report.dropped_labels:
        click.echo(
            "labels with too few examples, left out: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(report.dropped_labels.items()))
        )
    if report.accuracy is None:
        click.echo("too few examples per label to cross-validate; no accuracy figures")
    else:
        click.echo(f"cross-validated ({report.folds}-fold) accuracy: {report.accuracy:.4f}")
        click.echo(f"{_pad('category', 18)}{'precision':>10}{'recall':>10}{'F1':>10}{'n':>8}")
        for score in report.per_category:
            click.echo(
                f"{_pad(score.label, 18)}{score.precision:>10.3f}{score.recall:>10.3f}{score.f1:>10.3f}"
                f"{score.support:>8}"
            )
        click.echo(f"macro-F1: {report.macro_f1:.4f}")
        if report.macro_f1 < WEAK_MODEL_F1:
            click.echo(
                "note: this model is weak (more history helps); the built-in lexicon still decides "
                "whenever the model is unsure"
            )

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    click.echo(
        f"validation fold ({comparison.n_validation} messages) macro-F1: new {shown(comparison.new_macro_f1)}, "
        f"current {shown(comparison.current_macro_f1)} — {comparison.reason}"
    )
    elapsed = time.perf_counter() - started
    if comparison.replaced:
        bump_map_version(current_app.extensions["redis"])  # every process loads the new model on its next batch
        click.echo(
            f"trained on {report.n_samples} messages in {elapsed:.1f} s; saved {comparison.model_path} (now in use)"
        )
        _keep_history(file)
    else:
        click.echo(
            f"trained on {report.n_samples} messages in {elapsed:.1f} s; the current model stays in use "
            "(--force to replace it anyway)"
        )


def _keep_history(file: Path) -> None:
    """Keep the history behind the model in use, for the daily retraining from staff corrections."""
    from reports.retraining import history_path  # models need the app being built (see _region_tree)

    target = history_path(demand.model_dir_for(current_app.instance_path))
    if current_app.config.get("CLASSIFIER_HISTORY_FILE") or target.resolve() == file.resolve():
        return  # the county names its own history file, or this is the kept copy already
    shutil.copyfile(file, target)
    click.echo(f"kept {file} as {target}: the daily retraining adds the console's corrections to it")
