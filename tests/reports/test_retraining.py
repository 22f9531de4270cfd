"""Learning from staff: console corrections retrain the county's model on a schedule (a real RQ job), only
when there are enough new ones, and every retraining leaves an audit row with the comparison."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

import demand
from config.queues import QueueNames
from demand.training import read_training_csv
from handlers.parsing import taxonomy
from jobs.classifier import retrain_classifier
from jobs.cron import tick
from models import AuditEvent, Ticket, User, db, utcnow
from ops.queue import enqueue, get_queue
from reports.retraining import HISTORY_FILE, KEPT, RETRAINED
from tests.web.console.helpers import new_ticket
from workflow.policy import staff_actor
from workflow.queue import correct_ticket

PROJECT = Path(__file__).resolve().parents[2]
HISTORY = PROJECT / "tests" / "data" / "labelled_messages.csv"
# Messages the parser files under 城乡建设 that staff re-file (the words are the resident's).
MESSAGES = [
    ("阳光花园小区门口的广场舞音响太吵了，每晚到十点", "环境保护"),
    ("幸福里小区楼下烧烤摊油烟太大，窗户都不敢开", "环境保护"),
    ("阳光花园3号楼旁边工地晚上还在打桩，吵得睡不着", "环境保护"),
    ("幸福里小区有人在绿化带里烧垃圾，烟很呛", "环境保护"),
    ("阳光花园的快递柜收费不合理，超时就收钱", "商贸旅游"),
]


@pytest.fixture
def instance(region, tmp_path, monkeypatch):
    """The app's instance folder moved to a scratch folder, so a model trained here reaches no other test."""
    monkeypatch.setattr(region, "instance_path", str(tmp_path))
    monkeypatch.setitem(region.config, "CLASSIFIER_MIN_CORRECTIONS", 3)
    demand.reset_parsers()
    yield tmp_path
    demand.reset_parsers()


def with_history(instance: Path) -> Path:
    model_dir = demand.model_dir_for(instance)
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HISTORY, model_dir / HISTORY_FILE)
    return model_dir


def correct(app, messages) -> None:
    """Tickets from these words, each re-filed by a town officer through 更正识别结果."""
    now = utcnow() - timedelta(hours=1)
    ids = [new_ticket(app, text, now, f"oLearn{i}{len(text)}") for i, (text, _) in enumerate(messages)]
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username="liuhm")).scalar_one_or_none()
        if user is None:
            user = User(username="liuhm", role="staff", region_code="990101")
            db.session.add(user)
        for ticket_id, (_, label) in zip(ids, messages, strict=True):
            ticket = db.session.get(Ticket, ticket_id)
            form = {"category": label, "urgency": ticket.urgency, "grid": ticket.grid_code}
            if label == ticket.category:  # already right: a confirmation is a person's label too
                ticket.fields = {**ticket.fields, "review": "pending"}
            correct_ticket(ticket, staff_actor(user, "console"), form, taxonomy(), utcnow())
        db.session.commit()


def audit_rows(app) -> list[AuditEvent]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(AuditEvent).filter(AuditEvent.action.in_([RETRAINED, KEPT])).order_by(AuditEvent.id)
            ).scalars()
        )


def test_too_few_corrections_do_nothing_and_the_log_says_why(region, instance, run_jobs, caplog):
    model_dir = with_history(instance)
    correct(region, MESSAGES[:2])
    caplog.set_level(logging.INFO, logger="jobs.classifier")
    with region.app_context():
        enqueue(retrain_classifier, queue=QueueNames.WORKFLOW, job_id="retrain-test-few")
    run_jobs()
    assert "2 corrections, fewer than the 3 needed to retrain" in caplog.text
    assert sorted(p.name for p in model_dir.iterdir()) == [HISTORY_FILE]
    assert audit_rows(region) == []


def test_corrections_retrain_the_model_once_and_leave_an_audit_row(region, instance, run_jobs, caplog):
    model_dir = with_history(instance)
    correct(region, MESSAGES[:3])
    caplog.set_level(logging.INFO, logger="jobs.classifier")
    with region.app_context():
        enqueue(retrain_classifier, queue=QueueNames.WORKFLOW, job_id="retrain-test-1")
    run_jobs()
    [row] = audit_rows(region)
    assert row.action == RETRAINED and row.actor == "system" and row.data["reason"] == "no model in use"
    assert row.data["corrections"] == 3 and row.data["history"] == len(read_training_csv(HISTORY)[0])
    assert row.data["n_validation"] >= 20 and 0 < row.data["new_macro_f1"] <= 1
    assert (model_dir / "LATEST").read_text() == "classifier-v0001.pkl"
    assert "comparison" in caplog.text and "new_macro_f1" in caplog.text

    # Nothing new: the next day's run leaves everything as it was.
    with region.app_context():
        assert retrain_classifier()["reason"].startswith("no new corrections since the last retraining")
    assert len(audit_rows(region)) == 1

    # New corrections: retrained, and now compared with the model in use on the same fixed fold.
    correct(region, MESSAGES[3:])
    with region.app_context():
        outcome = retrain_classifier()
    assert outcome["ran"] and outcome["corrections"] == 5
    first, second = audit_rows(region)
    assert second.data["current_macro_f1"] is not None and second.data["n_validation"] >= first.data["n_validation"]
    assert second.action == (RETRAINED if second.data["replaced"] else KEPT)
    if second.data["replaced"]:
        assert (model_dir / "LATEST").read_text() == "classifier-v0002.pkl"


def test_no_history_and_no_model_means_no_retraining(region, instance):
    correct(region, MESSAGES[:3])
    with region.app_context():
        outcome = retrain_classifier()
    assert not outcome["ran"] and "no history" in outcome["reason"] and "train-classifier" in outcome["reason"]
    assert not demand.model_dir_for(instance).exists() or not any(demand.model_dir_for(instance).glob("*.pkl"))


def test_the_cron_tick_enqueues_the_retraining_once_a_day(region):
    day = 20_000 * 86_400.0
    with region.app_context():
        tick(day + 60)
        tick(day + 3600)
        ids = get_queue(QueueNames.WORKFLOW).job_ids
    assert ids.count("cron-retrain_classifier-20000") == 1
