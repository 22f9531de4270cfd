"""Staff accounts from the command line: create-user, create-token, revoke-token, deactivate-user."""

from __future__ import annotations

import secrets

import click
from flask.cli import with_appcontext

from accounts.login import deactivate, reactivate, set_password
from accounts.tokens import create_token, revoke_tokens
from models import User, audit, db, node_by_code, utcnow
from models.staff import ROLES


def _user(name: str) -> User:
    user = db.session.execute(db.select(User).filter_by(username=name)).scalar_one_or_none()
    if user is None:
        raise click.BadParameter(f"no user named {name}; create it with create-user first", param_hint="NAME")
    return user


@click.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--region", "region_code", required=True, help="code of the region node this user is limited to")
@click.option("--password", default=None, help="omit to generate one (printed once)")
@with_appcontext
def create_user_command(name: str, role: str, region_code: str, password: str | None) -> None:
    """Create (or update) a staff user limited to the region subtree CODE. Updating an existing user sets
    a new password, which signs them out everywhere."""
    if node_by_code(region_code) is None:
        raise click.BadParameter(
            f"no region node with code {region_code}; import the region first", param_hint="--region"
        )
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    user = db.session.execute(db.select(User).filter_by(username=name)).scalar_one_or_none()
    action = "user.updated" if user else "user.created"
    if user is None:
        user = User(username=name)
        db.session.add(user)
    user.role, user.region_code = role, region_code
    if user.id is None:
        db.session.flush()
    set_password(user, password, utcnow(), "cli")
    if not user.active:
        reactivate(user, "cli")
    user.active = True
    audit("cli", action, name, role=role, region=region_code)
    db.session.commit()
    click.echo(f"{action.split('.')[1]} {name} ({role}, region {region_code})")
    if generated:
        click.echo(f"password: {password}")


@click.command("create-token")
@click.argument("name")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="the token stops working after this")
@with_appcontext
def create_token_command(name: str, expires_days: int | None) -> None:
    """Create an API token for user NAME; the token is the last line printed (shown once)."""
    user = _user(name)
    if not user.active:
        raise click.BadParameter(f"user {name} is deactivated", param_hint="NAME")
    token = create_token(user, utcnow(), "cli", expires_days)
    db.session.commit()
    until = f", expires in {expires_days} days" if expires_days else ""
    click.echo(f"token for {name} (role {user.role}, region {user.region_code}{until}); it is shown only once:")
    click.echo(token)


@click.command("revoke-token")
@click.argument("name")
@click.option("--id", "token_id", type=int, default=None, help="revoke only this token (ids: the console's admin page)")
@with_appcontext
def revoke_token_command(name: str, token_id: int | None) -> None:
    """Revoke every API token of user NAME (or one, with --id), effective at once."""
    user = _user(name)
    count = revoke_tokens(user, utcnow(), "cli", token_id)
    db.session.commit()
    click.echo(f"revoked {count} token(s) of {name}")


@click.command("deactivate-user")
@click.argument("name")
@with_appcontext
def deactivate_user_command(name: str) -> None:
    """Deactivate user NAME: signed out everywhere and every token revoked, at once."""
    user = _user(name)
    sessions, tokens = deactivate(user, utcnow(), "cli")
    db.session.commit()
    click.echo(f"deactivated {name}: {sessions} session(s) ended, {tokens} token(s) revoked")
