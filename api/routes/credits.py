"""Credits: the backend balance the workers last saw for this tenant's account."""

from fastapi import APIRouter

from api.deps import SessionDep, TenantDep
from api.openapi import errors
from api.schemas.jobs import CreditsOut
from core.repo.reads import credit_account, credit_balance

router = APIRouter(prefix="/v1/credits", tags=["credits"])


@router.get(
    "", response_model=CreditsOut, responses=errors(401), summary="The last seen credit balance"
)
def get_credits(tenant: TenantDep, session: SessionDep) -> CreditsOut:
    account = credit_account(tenant)
    shown = "tenant" if account != "shared" else "shared"
    balance = credit_balance(session, account)
    if balance is None:
        return CreditsOut(
            account=shown,
            available=None,
            frozen=None,
            total=None,
            seen_at=None,
            message="no balance seen yet; the workers check it while they run jobs",
        )
    return CreditsOut(
        account=shown,
        available=balance.available,
        frozen=balance.frozen,
        total=balance.total,
        seen_at=balance.seen_at,
    )
