"""create-user and create-token."""

from __future__ import annotations

import secrets

import click
from flask.cli import with_appcontext
from werkzeug.security import generate_password_hash

from models import ApiToken, User, audit, db, hash_token, node_by_code
from models.staff import ROLES


@click.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--region", "region_code", required=True, help="code of the region node this user is limited to")
@click.option("--password", default=None, help="omit to generate one (printed once)")
@with_appcontext
def create_user_command(name: str, role: str, region_code: str, password: str | None) -> None:
    """Create (or update) a staff user limited to the region subtree CODE."""
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
    user.password_hash = generate_password_hash(password, method="scrypt")
    user.active = True
    audit("cli", action, name, role=role, region=region_code)
    db.session.commit()
    click.echo(f"{action.split('.')[1]} {name} ({role}, region {region_code})")
    if generated:
        click.echo(f"password: {password}")


@click.command("create-token")
@click.argument("name")
@with_appcontext
def create_token_command(name: str) -> None:
    """Create an API token for user NAME; the token is the last line printed (shown once)."""
    user = db.session.execute(db.select(User).filter_by(username=name)).scalar_one_or_none()
    if user is None:
        raise click.BadParameter(f"no user named {name}; create it with create-user first", param_hint="NAME")
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=hash_token(token)))
    audit("cli", "token.created", name)
    db.session.commit()
    click.echo(f"token for {name} (role {user.role}, region {user.region_code}); it is shown only once:")
    click.echo(token)
