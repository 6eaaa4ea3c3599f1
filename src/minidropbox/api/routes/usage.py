"""What the caller's account takes: the quota, and where the bytes are."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from minidropbox.api.deps import Context, CurrentUser
from minidropbox.api.schemas import UsagePublic, error_responses
from minidropbox.service.quota import usage_report

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/usage", response_model=UsagePublic, responses=error_responses(401, 429))
def usage(principal: CurrentUser, ctx: Context) -> UsagePublic:
    """Quota, used and free bytes (committed versions only), and the logical sizes of current
    files, older versions and the trash."""
    return UsagePublic(**asdict(usage_report(ctx.db, principal)))
