"""The web page for people: `/` and its assets, all from the repo (no CDN), and its sign-in.

Signing in puts the API key in an HttpOnly, SameSite=Strict cookie: the page's script never sees
it, and it never appears in a URL. Every `/v1` route accepts that cookie (`api.deps`); a change
must also carry the `X-Nemo-Batch-Page` header, which a cross-site form cannot send.
"""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import PAGE_COOKIE, SessionDep, TenantDep, tenant_for
from api.errors import NotFound
from api.openapi import errors

router = APIRouter(tags=["page"])

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
"""Every file the page loads, by name: nothing else under STATIC is served."""
COOKIE_MAX_AGE_S = 12 * 3600
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


@router.get("/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFound("file")
    return FileResponse(
        STATIC / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


class SignIn(BaseModel):
    key: Annotated[str, Field(min_length=1, max_length=200, description="An API key.")]


class SignedIn(BaseModel):
    tenant: str = Field(description="The name of the tenant the key belongs to.")


@router.post(
    "/ui/session",
    response_model=SignedIn,
    responses=errors(400, 401, 422),
    summary="Sign the web page in",
)
def sign_in(body: SignIn, request: Request, response: Response, session: SessionDep) -> SignedIn:
    """Checks the key and keeps it in an HttpOnly, SameSite=Strict cookie for 12 hours."""
    tenant = tenant_for(session, body.key.strip())
    response.set_cookie(
        PAGE_COOKIE,
        body.key.strip(),
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return SignedIn(tenant=tenant.name)


@router.get(
    "/ui/session",
    response_model=SignedIn,
    responses=errors(401),
    summary="Who the web page is signed in as",
)
def who(tenant: TenantDep) -> SignedIn:
    return SignedIn(tenant=tenant.name)


@router.delete(
    "/ui/session",
    status_code=204,
    response_class=Response,
    summary="Sign the web page out",
)
def sign_out(request: Request) -> Response:
    """Forgets the cookie; the key itself stays valid (revoke it with `nemo-batch apikey`)."""
    response = Response(status_code=204)
    response.delete_cookie(
        PAGE_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
