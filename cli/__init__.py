"""Flask CLI commands (`flask --app app <command>`)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from cli import broadcasts, check_config, menu, parser_commands, region, security, sweep, users, worker

    app.cli.add_command(region.import_region_command)
    app.cli.add_command(region.load_demo_command)
    app.cli.add_command(region.import_members_command)
    app.cli.add_command(users.create_user_command)
    app.cli.add_command(users.create_token_command)
    app.cli.add_command(users.revoke_token_command)
    app.cli.add_command(users.deactivate_user_command)
    app.cli.add_command(security.security_table_command)
    app.cli.add_command(worker.worker_command)
    app.cli.add_command(check_config.check_config_command)
    app.cli.add_command(worker.recover_command)
    app.cli.add_command(sweep.sweep_command)
    app.cli.add_command(menu.sync_menu_command)
    app.cli.add_command(broadcasts.sync_tags_command)
    app.cli.add_command(broadcasts.sync_followers_command)
    app.cli.add_command(broadcasts.recover_broadcasts_command)
    app.cli.add_command(parser_commands.parse_command)
    app.cli.add_command(parser_commands.train_classifier_command)
