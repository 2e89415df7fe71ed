"""Liveness and readiness probes (no authentication)."""

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SettingsDep
from api.errors import error_body
from api.openapi import answer, errors
from core import broker
from core.db import get_engine

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]] = Field(
        description="Each dependency checked: database, broker."
    )


@router.get("/healthz", response_model=Liveness, summary="The process is up")
async def healthz() -> Liveness:
    """On the event loop itself, never behind the thread pool that intake may fill."""
    return Liveness(status="ok")


def _database_reachable() -> bool:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


@router.get(
    "/readyz",
    summary="The database and the broker answer",
    response_model=None,
    responses=answer(200, Readiness, "Every dependency answers.") | errors(503),
)
def readyz(settings: SettingsDep) -> dict[str, Any] | JSONResponse:
    checks = {
        "database": _database_reachable(),
        "broker": broker.broker_reachable(settings.redis_url),
    }
    down = [name for name, ok in checks.items() if not ok]
    if down:
        return JSONResponse(
            error_body(
                "not_ready",
                f"not ready: {' and '.join(down)} unreachable",
                [{"loc": name, "message": "unreachable"} for name in down],
            ),
            503,
        )
    return {"status": "ok", "checks": {name: "ok" for name in checks}}
