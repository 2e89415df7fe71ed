"""`nemo-batch emulator`: run the local NemoVideo backend emulator (see emulator/README.md)."""

from __future__ import annotations

from pathlib import Path

import typer

MB = 1024 * 1024


def emulator_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8700, help="Port to listen on."),
    profile: str = typer.Option("ideal", help="ideal | realistic | hostile | FILE.json"),
    time_scale: float = typer.Option(1.0, help="Multiplies every delay of the profile."),
    seed: int = typer.Option(1, help="Seed of the fault decisions."),
    data_dir: Path = typer.Option(Path(".emulator-data"), help="Uploads and renders go here."),
    token: list[str] = typer.Option([], help="A registered token (repeatable)."),
    registered_credits: int = typer.Option(1_000_000, help="Balance of each --token."),
    anon_credits: int = typer.Option(100, help="Balance of a new anonymous user."),
    anon_token_ttl: float = typer.Option(7 * 24 * 3600.0, help="Anonymous token life, s."),
    generation_cost: int = typer.Option(100, help="Credits a generation costs."),
    edit_cost: int = typer.Option(50, help="Credits an edit costs."),
    max_upload_mb: float = typer.Option(200.0, help="Largest upload accepted, MB."),
    allow_url_host: list[str] = typer.Option([], help='URL upload host allowed ("*": any).'),
    event_shape: str = typer.Option("adk", help="adk | vendor (events and render status)."),
    render_scale: float = typer.Option(1.0, help="Shrinks rendered frames (e.g. 0.25)."),
    render_workers: int = typer.Option(2, help="ffmpeg renders at once."),
    keepalive: float = typer.Option(5.0, help="Seconds between SSE keep-alives."),
    public_url: str | None = typer.Option(None, help="Base of media and output URLs."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    rate_limit_rps: float | None = typer.Option(None, help="Override the profile's rate."),
    rate_limit_burst: int | None = typer.Option(None, help="Override the profile's burst."),
    no_text_rate: float | None = typer.Option(None, help="Override the no-text share."),
    render_failure_rate: float | None = typer.Option(None, help="Override render failures."),
    variant: list[str] = typer.Option([], help="Serve a backend variant (repeatable; all)."),
    variant_rate: float | None = typer.Option(None, help="Share a variant applies to."),
) -> None:
    """Start the NemoVideo backend emulator (blocks until stopped)."""
    from emulator.config import build_config
    from emulator.server import serve

    try:
        config = build_config(
            data_dir=data_dir,
            profile=profile,
            profile_overrides={
                "rate_limit_rps": rate_limit_rps,
                "rate_limit_burst": rate_limit_burst,
                "no_text_rate": no_text_rate,
                "render_failure_rate": render_failure_rate,
                "variant_rate": variant_rate,
            },
            variants=variant,
            host=host,
            port=port,
            time_scale=time_scale,
            seed=seed,
            tokens=token,
            registered_credits=registered_credits,
            anon_credits=anon_credits,
            anon_token_ttl_s=anon_token_ttl,
            generation_cost=generation_cost,
            edit_cost=edit_cost,
            max_upload_bytes=int(max_upload_mb * MB),
            allow_url_hosts=allow_url_host,
            event_shape=event_shape,
            render_scale=render_scale,
            render_workers=render_workers,
            keepalive_s=keepalive,
            public_url=public_url,
            log_level=log_level,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"NemoVideo emulator on http://{host}:{port} (profile {config.profile.name})")
    serve(config)
