"""The FastAPI application factory (`uvicorn api.app:create_app --factory`)."""

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import metrics
from api.errors import install_error_handlers
from api.openapi import install_openapi
from api.routes import (
    assets,
    batches,
    credits,
    deliveries,
    health,
    jobs,
    manifest,
    schedules,
    ui,
    usage,
)
from api.schemas.assets import AssetUpload
from api.schemas.schedules import ScheduleIn, ScheduleUpdate
from api.write_limits import WriteLimit
from core.batch_input import BatchIn
from core.db import configure_pool
from core.logging import configure_logging
from core.pools import API_THREADS
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (small limits, temporary storage)."""
    settings = settings or get_settings()
    configure_logging(settings)
    configure_pool("api", API_THREADS)
    # Swagger UI and ReDoc served from the package, not a CDN: the docs work offline too.
    app = FastAPIOffline(
        title="nemo-batch",
        version="0.1.0",
        summary="Batch product videos on the NemoVideo backend.",
        # Operation ids are the routes' names (`create_batch`): a generated client's methods.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.settings = settings
    app.state.metrics_registry = metrics.metrics_registry(settings)
    install_error_handlers(app)
    for module in (health, metrics, manifest, ui):
        app.include_router(module.router)
    for module in (assets, batches, jobs, credits, usage, deliveries, schedules):
        app.include_router(module.router, dependencies=[WriteLimit])
    # The bodies that routes read themselves (JSON beside CSV, size-limited), by reference.
    install_openapi(app, (AssetUpload, BatchIn, ScheduleIn, ScheduleUpdate))
    return app
