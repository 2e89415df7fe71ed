"""Secrets given to commands on standard input, never as arguments (`ps` and shell histories
show arguments to everyone on the machine)."""

import getpass
import sys

import typer


def read_secret(what: str) -> str:
    """A secret from standard input (a pipe, or typed without echo): never an argument, which
    `ps` and shell histories show."""
    value = getpass.getpass(f"{what}: ") if sys.stdin.isatty() else sys.stdin.readline()
    value = value.strip()
    if not value:
        typer.echo(f"no {what} on standard input", err=True)
        raise typer.Exit(2)
    return value
