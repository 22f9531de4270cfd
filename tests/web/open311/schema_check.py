"""Every JSON answer of /open311/v2/ against the project's JSON Schema files (schemas/): which schema
follows from the method, the path and the status."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ROUTES = [
    (r"discovery\.json$", "discovery"),
    (r"services\.json$", "services"),
    (r"services/.+\.json$", "service_definition"),
    (r"requests(/[^/]+)?\.json$", "service_requests"),
    (r"tokens/[^/]+\.json$", "tokens"),
    (r"servicerequestupdates\.json$", "service_request_updates"),
]


@cache
def _validators() -> dict[str, Draft202012Validator]:
    documents = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values()
    )
    validators = {}
    for name, doc in documents.items():
        Draft202012Validator.check_schema(doc)
        validators[name] = Draft202012Validator(doc, registry=registry)
    return validators


def schema_for(method: str, path: str, status: int) -> str:
    if status >= 400:
        return "errors"
    if method == "POST" and status == 201:
        return "post_response"
    for pattern, name in ROUTES:
        if re.search(pattern, path.split("?", 1)[0]):
            return name
    raise AssertionError(f"no schema for {method} {path}")


def validate(data, name: str) -> None:
    errors = sorted(_validators()[name].iter_errors(data), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def checked(method: str, path: str, status: int, content_type: str, body: bytes):
    """The parsed JSON answer, after validating it against its schema."""
    assert content_type.startswith("application/json"), (status, content_type, body[:200])
    data = json.loads(body)
    validate(data, schema_for(method, path, status))
    return data
