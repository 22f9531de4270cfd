"""Install the console map's library (Leaflet) into an untracked folder the app serves (MAP_LIBRARY_DIR).

Leaflet's built files are taken from a PyPI package that ships them (django-leaflet's wheel: only its
static files are used, none of its Python), fetched with pip from the same index as every other
dependency and checked against a pinned hash. No CDN at run time, and no third-party code in the repository.
Without network the console still works: the map page shows its grid list and says the map is missing.

    python -m scripts.fetch_map_library [TARGET_DIR]
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "django-leaflet==0.34.0"  # ships Leaflet 1.9.3
WHEEL_SHA256 = "367f74c63709c1b466b740e0e7bd50cdc0d76f08cab2d6566af1559818d79cc2"
PREFIX = "leaflet/static/leaflet/"
WANTED = (
    "leaflet.js",
    "leaflet.css",
    "images/layers.png",
    "images/layers-2x.png",
    "images/marker-icon.png",
    "images/marker-icon-2x.png",
    "images/marker-shadow.png",
)
DEFAULT_TARGET = Path(__file__).resolve().parent.parent / "vendor" / "leaflet"


def fetch(target: Path) -> bool:
    with tempfile.TemporaryDirectory() as download:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                PACKAGE,
                "-d",
                download,
            ],
            check=False,
        )
        wheels = list(Path(download).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            print(f"map library: could not download {PACKAGE}; the map page will show its list view", file=sys.stderr)
            return False
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            print(
                f"map library: {wheels[0].name} has sha256 {digest}, expected {WHEEL_SHA256}; not installed",
                file=sys.stderr,
            )
            return False
        staging = target.with_name(target.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in WANTED:
                out = staging / name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(wheel.read(PREFIX + name))
        (staging / "SOURCE").write_text(f"{PACKAGE} sha256:{WHEEL_SHA256}\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    print(f"map library: Leaflet installed in {target}")
    return True


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_TARGET
    fetch(target.resolve())
    return 0  # never fail the setup over the map: the console degrades to its list view


if __name__ == "__main__":
    raise SystemExit(main())
