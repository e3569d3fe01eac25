"""`darkroom acls ROLE`: the least rights a role needs, as `kafka-acls` lines, or applied."""

from __future__ import annotations

import typer

from streams.cli.common import console, state
from streams.kafka.acls import ROLES, apply_grants, role_acls
from streams.kafka.clients import make_admin, probe


def acls(
    ctx: typer.Context,
    role: str = typer.Argument(..., help=f"One of: {', '.join(ROLES)}"),
    principal: str = typer.Option(
        "User:darkroom", "--principal", help="Who gets the rights, as Kafka names it"
    ),
    into: str | None = typer.Option(
        None, "--into", help="replay-into: the target topic (default: the uploads topic)"
    ),
    group: str | None = typer.Option(
        None, "--group", help="consumer: its consumer group (default: search-indexer)"
    ),
    apply: bool = typer.Option(
        False, "--apply", help="Create the ACLs on the cluster (needs ALTER on the cluster)"
    ),
) -> None:
    """Print (or create) the ACLs ROLE needs with the current topic names and app id."""
    settings = state(ctx).settings
    grants = role_acls(role, settings, into=into, group=group)
    if not apply:
        for grant in grants:
            typer.echo(grant.kafka_acls(principal))
        return
    probe(settings)
    count = apply_grants(make_admin(settings), grants, principal)
    console.print(f"created {count} ACLs for {principal} ({role})")
