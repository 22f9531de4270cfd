"""Open311 GeoReport v2 (/open311/v2/): discovery, services, requests (GET, POST), requests/<id>, each as
.json or .xml, errors in the spec's shape. `api_key` is an API token from `flask create-token`; reading
and creating requests are limited to the token user's region subtree. Discovery and services are public.
"""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException

from accounts.tokens import authenticate
from delivery.outbox import enqueue_delivery
from demand.taxonomy import Taxonomy, load_taxonomy
from handlers.open311 import Open311Error, find_request, find_requests, services, submit_request
from handlers.parsing import get_parser
from models import db, utcnow
from workflow.policy import staff_actor

bp = Blueprint("open311", __name__)

FORMATS = "<any(json, xml):fmt>"
CHANGESET = "2026-11-24T00:00:00+08:00"
SPEC = "http://wiki.open311.org/GeoReport_v2"
# XML element names for the items of each top-level list.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
_taxonomy: dict[str, Taxonomy] = {}


def taxonomy() -> Taxonomy:
    if "t" not in _taxonomy:
        _taxonomy["t"] = load_taxonomy()
    return _taxonomy["t"]


# --- rendering -----------------------------------------------------------------------------------------


def _xml_value(parent: ET.Element, tag: str, value) -> None:
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(element, key, inner)
    elif isinstance(value, list):
        for inner in value:
            _xml_value(element, ITEM_TAGS.get(tag, "item"), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def render(fmt: str, root: str, data, status: int = 200) -> Response:
    """`data` as JSON, or as XML under <root> (a list becomes repeated child elements)."""
    if fmt == "xml":
        element = ET.Element(root)
        if isinstance(data, list):
            for item in data:
                _xml_value(element, ITEM_TAGS.get(root, "item"), item)
        else:
            for key, value in data.items():
                _xml_value(element, key, value)
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
            element, encoding="utf-8", xml_declaration=False
        )
        return Response(body, status, content_type="text/xml; charset=utf-8")
    body = json.dumps(data, ensure_ascii=False)
    return Response(body, status, content_type="application/json; charset=utf-8")


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status)


def _fmt() -> str:
    return (request.view_args or {}).get("fmt") or ("xml" if request.path.endswith(".xml") else "json")


@bp.errorhandler(Open311Error)
def open311_error(exc: Open311Error):
    db.session.rollback()
    return error(_fmt(), exc.status, exc.description)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return error(_fmt(), exc.code or 500, exc.description or exc.name)


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def require_key() -> None:
    """The token user, from `api_key` (query or form) or a Bearer header; 403 in GeoReport's shape."""
    key = (request.values.get("api_key") or "").strip()
    user = authenticate(f"Bearer {key}") if key else authenticate(request.headers.get("Authorization", ""))
    if user is None:
        raise Open311Error(403, "api_key is missing or invalid (use a token from `flask create-token`)")
    g.user = user
    g.actor = staff_actor(user, "open311")


# --- endpoints -----------------------------------------------------------------------------------------


@bp.get(f"/discovery.{FORMATS}")
def discovery(fmt: str):
    base = url_for("open311.discovery", fmt="json", _external=True).rsplit("/", 1)[0] + "/"
    return render(
        fmt,
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": "县网格化服务管理中心（工作台 /console/）",
            "key_service": "API keys are issued by the county admin: flask --app app create-token NAME",
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": base,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
    )


@bp.get(f"/services.{FORMATS}")
def list_services(fmt: str):
    return render(fmt, "services", services(taxonomy()))


@bp.get(f"/requests.{FORMATS}")
def list_requests(fmt: str):
    require_key()
    return render(fmt, "service_requests", find_requests(g.actor, request.args, utcnow()))


@bp.get(f"/requests/<request_id>.{FORMATS}")
def get_request(request_id: str, fmt: str):
    require_key()
    return render(fmt, "service_requests", [find_request(g.actor, request_id)])


@bp.post(f"/requests.{FORMATS}")
def post_request(fmt: str):
    require_key()
    parser = get_parser(current_app.instance_path)
    submitted = submit_request(g.actor, request.form, parser, parser.taxonomy, utcnow())
    ids = [message.id for message in submitted.outbox]
    db.session.commit()
    for outbox_id in ids:
        enqueue_delivery(outbox_id)
    body = [{"service_request_id": submitted.ticket.number, "service_notice": submitted.notice, "account_id": None}]
    return render(fmt, "service_requests", body, 201)
