"""Placeholder; replaced below."""
from pathlib import Path


def latest_stamp(model_dir: Path):
    return None


def load_latest(model_dir: Path):
    return None
