"""The processes of a whole stack on one machine, started the one way `nemo-batch up` and
`nemo-batch demo` share: the emulator (unless a real backend is given), the API, the workers,
beat and (for `up`) Flower."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cli.demo_stack import ProcessSet
from core.loopback import free_port, port_is_free
from core.pools import API_THREADS, ProcessGroup

EMULATOR_TOKEN = "nmv_usr_local_emulator"
WEBHOOKS_CONCURRENCY = 2


@dataclass
class EmulatorOptions:
    profile: str = "realistic"
    time_scale: float = 0.05
    render_scale: float = 0.5


@dataclass
class StackPlan:
    """What to start. Ports of 0 are picked free; a `flower_port` of None starts no Flower."""

    run_dir: Path
    emulator: EmulatorOptions | None
    api_port: int = 0
    flower_port: int | None = None
    pipeline_concurrency: int = 2
    stream_concurrency: int = 16
    node: str = "local"


@dataclass
class RunningStack:
    api_url: str
    emulator_url: str | None
    flower_url: str | None
    backend_url: str
    logs: Path
    extra: dict[str, str] = field(default_factory=dict)


def process_groups(plan: StackPlan) -> list[ProcessGroup]:
    """The database users `start_stack` starts, for the connection budget."""
    return [
        ProcessGroup("API", "api", API_THREADS),
        ProcessGroup("pipeline worker", "pipeline", plan.pipeline_concurrency),
        ProcessGroup("stream worker", "stream", plan.stream_concurrency),
        ProcessGroup("webhooks worker", "webhooks", WEBHOOKS_CONCURRENCY),
        ProcessGroup("schedules worker", "schedules", 1),
        ProcessGroup("beat", "beat", 1),
    ]


def start_stack(processes: ProcessSet, plan: StackPlan) -> RunningStack:
    """Start every process of `plan` in `processes` and wait until the API is ready."""
    for name, port, option in (
        ("API", plan.api_port, "--api-port"),
        ("Flower", plan.flower_port, "--flower-port"),
    ):
        if port and not port_is_free(port):
            raise RuntimeError(f"port {port} for the {name} is in use: choose another ({option})")
    emulator_url = None
    if plan.emulator is not None:
        options = plan.emulator
        port = free_port()
        emulator_url = f"http://127.0.0.1:{port}"
        processes.env["NEMO_API_BASE"] = emulator_url
        processes.env["NEMO_TOKEN"] = EMULATOR_TOKEN
        processes.start(
            "emulator", "emulator", "--port", str(port), "--profile", options.profile,
            "--time-scale", str(options.time_scale), "--render-scale", str(options.render_scale),
            "--data-dir", str(plan.run_dir / "emulator"), "--token", EMULATOR_TOKEN,
        )  # fmt: skip
        processes.wait_http("emulator", f"{emulator_url}/_emulator/health")
    api_port = plan.api_port or free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    processes.start("api", "api", "--port", str(api_port))
    processes.start("worker", "worker", "--concurrency", str(plan.pipeline_concurrency),
                    "-n", f"{plan.node}-pipeline@%h")  # fmt: skip
    processes.start("worker-stream", "worker", "--stream", "--concurrency",
                    str(plan.stream_concurrency), "-n", f"{plan.node}-stream@%h")  # fmt: skip
    processes.start("worker-webhooks", "worker", "--webhooks", "--concurrency",
                    str(WEBHOOKS_CONCURRENCY),
                    "-n", f"{plan.node}-webhooks@%h")  # fmt: skip
    processes.start("worker-schedules", "worker", "--schedules",
                    "-n", f"{plan.node}-schedules@%h")  # fmt: skip
    processes.start("beat", "beat", "--schedule", str(plan.run_dir / "beat-schedule"))
    flower_url = None
    extra = {}
    if plan.flower_port is not None:
        flower_port = plan.flower_port or free_port()
        flower_url = f"http://127.0.0.1:{flower_port}"
        # Flower never runs without a password: one is made for this run if none is given.
        if not processes.env.get("FLOWER_PASSWORD"):
            extra["flower_password"] = processes.env["FLOWER_PASSWORD"] = secrets.token_urlsafe(12)
        processes.start("flower", "flower", "--port", str(flower_port))
    processes.wait_http("api", f"{api_url}/readyz")
    return RunningStack(
        api_url=api_url,
        emulator_url=emulator_url,
        flower_url=flower_url,
        backend_url=processes.env.get("NEMO_API_BASE", ""),
        logs=processes.logs,
        extra=extra,
    )


def new_api_key(database_url: str, tenant: str) -> str:
    """A fresh API key for `tenant` (created on first use); only its hash is stored."""
    from core.repo.tenants import create_api_key, get_or_create_tenant

    engine = create_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            return create_api_key(session, get_or_create_tenant(session, tenant))
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """A database or Redis URL fit to print: any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses (redis://): mask what follows a colon
        head, sep, tail = url.partition("@")
        if not sep:
            return url
        scheme, _, _ = head.partition("://")
        return f"{scheme}://***@{tail}"


def stack_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **overrides}
