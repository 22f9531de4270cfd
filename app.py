"""The application factory and the Flask CLI entry (`flask --app app …`). Nothing connects at import."""

from __future__ import annotations

import logging
import os

from flask import Flask

from config import ConfigError, load_settings


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        app.config.from_mapping(load_settings(config_name, app.instance_path, overrides))
    except ConfigError as refused:
        from cli.check_config import report_if_checking

        report_if_checking(refused)  # `flask check-config`: the reasons and exit 1, not a traceback
        raise

    from bot.sessions import SessionlessWebhooks
    from models import db
    from ops.logs import configure_logging
    from ops.redis_client import redis_from_url, resolve_redis_url

    app.session_interface = SessionlessWebhooks()
    configure_logging(app)
    db.init_app(app)
    _init_migrations(app, db)
    app.config["REDIS_URL"] = resolve_redis_url(app.config["REDIS_URL"], app.instance_path)
    app.extensions["redis"] = redis_from_url(app.config["REDIS_URL"])

    from web.inputs import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter  # an id past a database integer is a 404, not a 500
    from bot.official_account import bp as official_account_bp
    from bot.wecom import bp as wecom_bp
    from web.api import bp as api_bp
    from web.console import bp as console_bp
    from web.health import bp as health_bp
    from web.open311 import bp as open311_bp

    app.register_blueprint(official_account_bp)
    app.register_blueprint(wecom_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp, url_prefix="/api")
    app.register_blueprint(console_bp, url_prefix="/console")  # staff login (session + CSRF), see console/
    app.register_blueprint(open311_bp, url_prefix="/open311/v2")  # api_key = an API token

    from web.metrics import bp as metrics_bp

    app.register_blueprint(metrics_bp)  # /metrics; METRICS_TOKEN when set
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind nginx: the client's address and scheme come from X-Forwarded-For/-Proto (rate limits, logs).
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    _json_404_under_api(app)
    from cli import register_commands

    register_commands(app)
    return app


def _json_404_under_api(app: Flask) -> None:
    """A URL under /api/ (or /open311/v2/) that matches no route (an id past a database integer, say) answers
    JSON like the rest of that API. An app-level 404 handler is consulted before a blueprint's catch-all handler, so for
    any other request it hands the error to the blueprint's own handler (the console's error page)."""
    from flask import jsonify, request

    @app.errorhandler(404)
    def not_found(exc):
        if request.path.startswith("/api/"):
            return jsonify(error="not_found", message="no such resource, or it is outside your area"), 404
        if request.path.startswith("/open311/v2/"):  # GeoReport clients read errors in the spec's shape
            from web.open311 import outside_the_routes

            return outside_the_routes(exc)
        for name in request.blueprints:
            for code in (404, None):
                for cls in type(exc).__mro__:
                    handler = app.error_handler_spec.get(name, {}).get(code, {}).get(cls)
                    if handler is not None:
                        return handler(exc)
        return exc


def _init_migrations(app: Flask, db) -> None:
    from flask_migrate import Migrate

    Migrate(
        app, db, directory=os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations"), render_as_batch=True
    )


logging.getLogger("rq.worker").setLevel(logging.INFO)
