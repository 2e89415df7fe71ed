"""Administration commands: migrations, tenants and API keys."""

import typer
from rich.console import Console

console = Console()
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)


def migrate_command(revision: str = typer.Argument("head")) -> None:
    """Upgrade the database schema (DATABASE_URL) to REVISION."""
    from migrations.runner import upgrade

    upgrade(revision=revision)
    console.print(f"database migrated to {revision}")


@apikey_app.command("create")
def apikey_create(
    tenant: str = typer.Option(..., help="Tenant name; created if it does not exist."),
) -> None:
    """Create an API key for TENANT and print it once (only its hash is stored)."""
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    with session_scope() as session:
        tenant_row = get_or_create_tenant(session, tenant)
        key = create_api_key(session, tenant_row)
    console.print(f"API key for tenant [bold]{tenant}[/bold] (shown once, store it now):")
    typer.echo(key)


@tenant_app.command("set")
def tenant_set(
    name: str = typer.Argument(..., help="Tenant name."),
    inflight_limit: int | None = typer.Option(None, help="Jobs in flight at most."),
    backend_token: str | None = typer.Option(
        None, help="The tenant's own registered NemoVideo token ('' to clear)."
    ),
) -> None:
    """Change a tenant's limits or backend token."""
    from core.db import session_scope
    from core.repo.tenants import get_or_create_tenant

    with session_scope() as session:
        row = get_or_create_tenant(session, name)
        if inflight_limit is not None:
            row.inflight_limit = inflight_limit
        if backend_token is not None:
            row.backend_token = backend_token or None
    console.print(f"tenant {name} updated")


@tenant_app.command("show")
def tenant_show(name: str = typer.Argument(..., help="Tenant name.")) -> None:
    """Print a tenant's settings and its webhook signing secret (give it to the receiver)."""
    from core.db import session_scope
    from core.repo.tenants import tenant_by_name

    with session_scope() as session:
        row = tenant_by_name(session, name)
        if row is None:
            console.print(f"no tenant named {name}; create it with `nemo-batch apikey create`")
            raise typer.Exit(1)
        console.print(f"tenant {row.name} ({row.id})")
        console.print(f"  in-flight limit: {row.inflight_limit}")
        console.print(f"  own backend token: {'set' if row.backend_token else 'not set'}")
        console.print(f"  paused: {row.paused_reason or 'no'}")
        console.print("  webhook secret (verifies X-Nemo-Batch-Signature):")
        typer.echo(row.webhook_secret)
