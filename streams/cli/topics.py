"""`darkroom topics plan`: what an administrator must create for Darkroom on their cluster."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from streams.cli.common import console, state
from streams.worker.plan import planned_topics

app = typer.Typer(help="The topics Darkroom uses.", no_args_is_help=True)


@app.command()
def plan(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every topic the configured worker uses (partitions, replication, configs) and the
    `kafka-topics` commands that create them, for clusters that forbid CREATE to applications."""
    specs = planned_topics(state(ctx).settings)
    if as_json:
        rows = [
            {"name": s.name, "partitions": s.partitions, "replication": s.replication,
             "config": s.config}
            for s in specs
        ]  # fmt: skip
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="topics to create (the worker creates only those missing)")
    for column in ("topic", "partitions", "replication", "config"):
        table.add_column(column)
    for s in specs:
        config = ", ".join(f"{k}={v}" for k, v in s.config.items()) or "-"
        table.add_row(s.name, str(s.partitions), str(s.replication), config)
    console.print(table)
    for s in specs:
        configs = "".join(f" --config {k}={v}" for k, v in s.config.items())
        typer.echo(
            f"kafka-topics --bootstrap-server $BOOTSTRAP --command-config admin.properties "
            f"--create --topic {s.name} --partitions {s.partitions} "
            f"--replication-factor {s.replication}{configs}"
        )
