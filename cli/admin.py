"""Administration commands: migrations, tenants and API keys."""

from datetime import datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from cli.stdin_secret import read_secret

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


@apikey_app.command("list")
def apikey_list(
    tenant: str | None = typer.Option(None, help="Only this tenant's keys."),
) -> None:
    """List API keys: prefix, tenant, when made and last used, revoked (never the key)."""
    from core.db import session_scope
    from core.repo.tenants import list_api_keys, tenant_by_name

    with session_scope() as session:
        row = None
        if tenant is not None and (row := tenant_by_name(session, tenant)) is None:
            console.print(f"no tenant named {tenant}")
            raise typer.Exit(1)
        keys = list_api_keys(session, row)
        table = Table("id", "prefix", "tenant", "created", "last used", "revoked")
        for key, name in keys:
            table.add_row(
                str(key.id), key.prefix, name, _when(key.created_at),
                _when(key.last_used_at), _when(key.revoked_at),
            )  # fmt: skip
    console.print(table if keys else "no API keys")


@apikey_app.command("revoke")
def apikey_revoke(
    key: str = typer.Argument(..., help="The key's id or its prefix (`apikey list`)."),
) -> None:
    """Revoke an API key: from now on it answers 401."""
    from core.db import session_scope
    from core.repo.tenants import keys_matching, revoke_api_key

    with session_scope() as session:
        matches = keys_matching(session, key)
        if len(matches) != 1:
            what = "no key" if not matches else f"{len(matches)} keys"
            console.print(f"{what} match {key}; give an id or a longer prefix (`apikey list`)")
            raise typer.Exit(1)
        (row,) = matches
        changed = revoke_api_key(row)
    console.print(f"key {row.prefix}... {'revoked' if changed else 'was already revoked'}")


def retention_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; delete nothing."),
    days: float | None = typer.Option(None, help="Instead of RETENTION_DAYS.", min=0.001),
) -> None:
    """Delete job events and finished webhook deliveries older than RETENTION_DAYS, the videos
    and posters of jobs final for longer, and files no job within it uses (as beat does every
    RETENTION_CHECK_INTERVAL_S); --dry-run prints the counts and bytes and deletes nothing."""
    from core.db import session_scope
    from core.retention import apply_retention
    from core.settings import get_settings
    from core.storage import open_storage

    keep = days if days is not None else get_settings().retention_days
    if keep is None:
        console.print("RETENTION_DAYS is unset (everything is kept); give --days to try one")
        raise typer.Exit(1)
    with session_scope() as session:
        report = apply_retention(session, keep, dry_run=dry_run, storage=open_storage())
    console.print(str(report))


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


@tenant_app.command("set")
def tenant_set(
    name: str = typer.Argument(..., help="Tenant name."),
    inflight_limit: int | None = typer.Option(None, help="Jobs in flight at most."),
    backend_token_stdin: bool = typer.Option(
        False,
        "--backend-token-stdin",
        help="Read the tenant's own registered NemoVideo token from standard input.",
    ),
    clear_backend_token: bool = typer.Option(
        False, "--clear-backend-token", help="Use the shared token again."
    ),
    storage_quota: str | None = typer.Option(
        None,
        help="Bytes its assets and videos may take (e.g. 5000000000, 5GB, 500MiB), "
        "`unlimited`, or `default` to follow STORAGE_QUOTA_BYTES.",
    ),
) -> None:
    """Change a tenant's limits or backend token (`echo "$TOKEN" | nemo-batch tenant set acme
    --backend-token-stdin`)."""
    from core.db import session_scope
    from core.repo.storage_usage import set_quota
    from core.repo.tenants import get_or_create_tenant

    quota = parse_quota(storage_quota) if storage_quota is not None else None
    token = read_secret("backend token") if backend_token_stdin else None
    with session_scope() as session:
        row = get_or_create_tenant(session, name)
        if storage_quota is not None:
            set_quota(session, row, quota)
        if inflight_limit is not None:
            row.inflight_limit = inflight_limit
        if token is not None:
            row.backend_token = token
        if clear_backend_token:
            row.backend_token = None
    console.print(f"tenant {name} updated")


UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_quota(text: str) -> int | None:
    """`5GB`, `500MiB`, `1234` (bytes), `unlimited` (stored as -1) or `default` (None)."""
    from core.repo.storage_usage import UNLIMITED

    word = text.strip().lower().replace(" ", "")
    if word == "default":
        return None
    if word == "unlimited":
        return UNLIMITED
    number = word.rstrip("kmgtib")
    unit = word[len(number) :]
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in UNITS or value < 0:
        raise typer.BadParameter(
            f"{text!r}: give bytes (5000000000, 5GB, 500MiB), `unlimited` or `default`",
            param_hint="--storage-quota",
        )
    return int(value * UNITS[unit])


def _size(value: int | None) -> str:
    if value is None:
        return "no limit"
    return f"{value:,} bytes ({value / 1e9:.2f} GB)"


@tenant_app.command("usage")
def tenant_usage(
    name: str = typer.Argument(..., help="Tenant name."),
    recount: bool = typer.Option(
        False, "--recount", help="Count the usage again from the rows (and store it)."
    ),
) -> None:
    """Print what a tenant's assets and videos take against its storage quota."""
    from core.db import session_scope
    from core.repo import storage_usage
    from core.repo.tenants import tenant_by_name
    from core.settings import get_settings

    with session_scope() as session:
        row = tenant_by_name(session, name)
        if row is None:
            console.print(f"no tenant named {name}")
            raise typer.Exit(1)
        if recount:
            storage_usage.recount(session, row.id)
            session.flush()
        usage = storage_usage.usage_of(session, row.id, get_settings().storage_quota_bytes)
    console.print(f"tenant {name}: storage used {_size(usage.used)}, quota {_size(usage.quota)}")


@tenant_app.command("rotate-webhook-secret")
def tenant_rotate_webhook_secret(
    name: str = typer.Argument(..., help="Tenant name."),
    overlap_hours: float = typer.Option(
        24.0, min=0, help="How long the old secret goes on signing beside the new one."
    ),
) -> None:
    """A new webhook secret; during the overlap each delivery carries two signatures (`v1=`
    with the new and with the old secret), so the receiver can switch at any time in it."""
    from core.db import session_scope
    from core.repo.tenants import rotate_webhook_secret, tenant_by_name

    with session_scope() as session:
        row = tenant_by_name(session, name)
        if row is None:
            console.print(f"no tenant named {name}")
            raise typer.Exit(1)
        secret = rotate_webhook_secret(session, row, timedelta(hours=overlap_hours))
    console.print(
        f"new webhook secret of {name}; the old one signs too for {overlap_hours:g} h:",
    )
    typer.echo(secret)


@tenant_app.command("show")
def tenant_show(name: str = typer.Argument(..., help="Tenant name.")) -> None:
    """Print a tenant's settings and its webhook signing secret (give it to the receiver)."""
    from core.db import session_scope
    from core.repo.storage_usage import effective_quota
    from core.repo.tenants import signing_secrets, tenant_by_name
    from core.settings import get_settings

    with session_scope() as session:
        row = tenant_by_name(session, name)
        if row is None:
            console.print(f"no tenant named {name}; create it with `nemo-batch apikey create`")
            raise typer.Exit(1)
        console.print(f"tenant {row.name} ({row.id})")
        console.print(f"  in-flight limit: {row.inflight_limit}")
        console.print(f"  own backend token: {'set' if row.backend_token else 'not set'}")
        console.print(f"  paused: {row.paused_reason or 'no'}")
        quota = effective_quota(row.storage_quota_bytes, get_settings().storage_quota_bytes)
        own = " (its own)" if row.storage_quota_bytes is not None else ""
        console.print(f"  storage: {_size(row.storage_used_bytes)} used of {_size(quota)}{own}")
        console.print("  webhook secret (verifies X-Nemo-Batch-Signature):")
        typer.echo(row.webhook_secret)
        if signing_secrets(row)[1:]:
            until = row.previous_webhook_secret_until
            console.print(f"  the previous secret signs too until {_when(until)}")
