"""Open311 GeoReport v2 (/open311/v2/), each method as .json or .xml: discovery, services, service
definitions, requests (GET, POST), requests/<id>, tokens/<id> and mySociety's servicerequestupdates.

Reads are open to everyone, as the spec has them (masked, no reporter data); OPEN311_READ_REQUIRES_KEY=1
makes them need an `api_key` (an API token from `flask create-token`), which also limits them to the token
user's region subtree. Writes always need one. Every answer under /open311/v2/, errors included (unknown
routes, wrong methods, bodies that are not UTF-8), is in the spec's shape.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import unquote_to_bytes
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, current_app, g, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from accounts.tokens import authenticate
from delivery.outbox import enqueue_delivery
from handlers.open311 import (
    Open311Error,
    find_request,
    find_requests,
    find_token,
    find_updates,
    service_definition,
    services,
    submit_request,
)
from handlers.parsing import get_parser, taxonomy
from models import User, db, utcnow
from workflow.policy import Actor, staff_actor

log = logging.getLogger(__name__)

bp = Blueprint("open311", __name__)

PREFIX = "/open311/v2/"
FORMATS = "<any(json, xml):fmt>"
CHANGESET = "2026-12-04T00:00:00+08:00"
SPEC = "http://wiki.open311.org/GeoReport_v2"
BODY_MAX = 1024 * 1024  # a request with thousands of ids fits; nothing legitimate is larger
# XML element names for the items of each list.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "service_request_updates": "request_update",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
# Characters XML 1.0 cannot carry at all; a posted description may hold them, the XML answer must not.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


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
        element.text = XML_ILLEGAL.sub("", str(value))


def render(fmt: str, root: str, data, status: int = 200) -> Response:
    """`data` as JSON, or as XML under <root> (a list becomes repeated child elements); None is null in
    JSON and an empty element in XML."""
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
    fmt = (request.view_args or {}).get("fmt")
    return fmt or ("xml" if request.path.endswith(".xml") else "json")


@bp.errorhandler(Open311Error)
def open311_error(exc: Open311Error):
    db.session.rollback()
    return error(_fmt(), exc.status, exc.description)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    db.session.rollback()
    response = error(_fmt(), exc.code or 500, exc.description or exc.name)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    log.exception("open311: %s %s failed", request.method, request.path)
    db.session.rollback()
    return error(_fmt(), 500, "internal error; the request was not applied")


@bp.app_errorhandler(NotFound)
@bp.app_errorhandler(MethodNotAllowed)
def outside_the_routes(exc: HTTPException):
    """Unknown paths and methods never reach a blueprint handler: those under /open311/v2/ still answer in
    the spec's shape; every other path keeps the default page."""
    if not request.path.startswith(PREFIX):
        return exc
    return http_error(exc)


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.before_request
def check_request() -> None:
    """UTF-8 only (the spec's rule; a stray byte must not silently empty the form) and the jurisdiction."""
    request.max_content_length = BODY_MAX
    raw = [request.query_string]
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        raw.append(request.get_data(cache=True))  # the form is parsed from this cached copy afterwards
    for blob in raw:
        for pair in blob.split(b"&"):
            try:
                unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise Open311Error(400, "the request is not valid UTF-8 (GeoReport v2 takes UTF-8 only)") from None
    if any("\x00" in value for value in request.values.values()):  # no database text column can hold it
        raise Open311Error(400, "parameters must not contain NUL characters")
    wanted = current_app.config.get("OPEN311_JURISDICTION") or ""
    given = (request.values.get("jurisdiction_id") or "").strip()
    if wanted and given and given != wanted:
        raise Open311Error(404, f"jurisdiction_id {given} not found (this endpoint serves {wanted})")


def _key_user() -> User | None:
    """The token user when a key is sent (`api_key`, query or form, or a Bearer header); 403 for a bad one."""
    key = (request.values.get("api_key") or "").strip()
    header = request.headers.get("Authorization", "")
    if not key and not header:
        return None
    user = authenticate(f"Bearer {key}") if key else authenticate(header)
    if user is None:
        raise Open311Error(403, "api_key is invalid (use a token from `flask create-token`)")
    return user


def require_key() -> User:
    user = _key_user()
    if user is None:
        raise Open311Error(403, "api_key is missing (use a token from `flask create-token`)")
    g.user = user
    return user


def reader() -> Actor | None:
    """Who reads: None for the public, else the key's user (a key narrows reads to its region)."""
    user = _key_user()
    if user is None and int(current_app.config.get("OPEN311_READ_REQUIRES_KEY") or 0):
        raise Open311Error(403, "api_key is missing: this county requires one for reading")
    return staff_actor(user, "open311") if user is not None else None


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
    reader()
    return render(fmt, "services", services(taxonomy()))


@bp.get(f"/services/<path:code>.{FORMATS}")
def get_service(code: str, fmt: str):
    reader()
    return render(fmt, "service_definition", service_definition(taxonomy(), code))


@bp.get(f"/requests.{FORMATS}")
def list_requests(fmt: str):
    return render(fmt, "service_requests", find_requests(reader(), request.args, utcnow(), taxonomy()))


@bp.get(f"/requests/<request_id>.{FORMATS}")
def get_request(request_id: str, fmt: str):
    return render(fmt, "service_requests", [find_request(reader(), request_id, taxonomy())])


@bp.get(f"/tokens/<token>.{FORMATS}")
def get_token(token: str, fmt: str):
    return render(fmt, "service_requests", [find_token(reader(), token)])


@bp.get(f"/servicerequestupdates.{FORMATS}")
def list_updates(fmt: str):
    return render(fmt, "service_request_updates", find_updates(reader(), request.args, utcnow()))


@bp.post(f"/requests.{FORMATS}")
def post_request(fmt: str):
    if request.form.get("service_request_id") and not request.form.get("service_code"):
        # A lookup too long for a URL (FixMyStreet asks for every open request it holds): read, not create.
        return render(fmt, "service_requests", find_requests(reader(), request.form, utcnow(), taxonomy()))
    actor = staff_actor(require_key(), "open311")
    parser = get_parser(current_app.instance_path)
    submitted = submit_request(actor, request.form, parser, taxonomy(), utcnow())
    ids = [message.id for message in submitted.outbox]
    db.session.commit()
    for outbox_id in ids:
        enqueue_delivery(outbox_id)
    body = [{"service_request_id": submitted.ticket.number, "service_notice": submitted.notice, "account_id": None}]
    return render(fmt, "service_requests", body, 201)
