"""The FastAPI application factory (`uvicorn api.app:create_app --factory`)."""

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import metrics
from api.errors import install_error_handlers
from api.routes import assets, batches, credits, deliveries, health, jobs, schedules
from core.logging import configure_logging
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (small limits, temporary storage)."""
    settings = settings or get_settings()
    configure_logging(settings)
    # Swagger UI and ReDoc served from the package, not a CDN: the docs work offline too.
    app = FastAPIOffline(
        title="nemo-batch",
        version="0.1.0",
        summary="Batch product videos on the NemoVideo backend.",
    )
    app.state.settings = settings
    app.state.metrics_registry = metrics.metrics_registry(settings)
    install_error_handlers(app)
    for module in (health, assets, batches, jobs, credits, deliveries, schedules, metrics):
        app.include_router(module.router)
    return app
