"""serve(config): run the emulator under uvicorn, tuned for many long-lived SSE streams."""

from __future__ import annotations

import uvicorn

from emulator.app import create_app
from emulator.config import EmulatorConfig

BACKLOG = 4096
KEEP_ALIVE_S = 30
GRACEFUL_SHUTDOWN_S = 3


def serve(config: EmulatorConfig) -> None:
    """Blocks until the server stops (SIGINT/SIGTERM)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=False,
            backlog=BACKLOG,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            limit_concurrency=None,
        )
    )
    server.run()
