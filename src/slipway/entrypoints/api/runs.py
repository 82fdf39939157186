"""``/api/runs``: deployments. This build has no deploy layer yet, so
creating a run answers 501 in the usual problem shape; the dashboard's
Deploy dialog posts here through the same function."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from slipway.entrypoints.api.deps import LoggedIn
from slipway.entrypoints.api.problems import problem_response

__all__ = ["DEPLOY_UNAVAILABLE", "not_available", "router"]

router = APIRouter(prefix="/api", tags=["runs"])

DEPLOY_UNAVAILABLE = "deployment is not available in this build"


def not_available() -> JSONResponse:
    return problem_response(
        501, DEPLOY_UNAVAILABLE, hint="resolve the image to see what a deploy would use"
    )


@router.post(
    "/runs",
    status_code=201,
    summary="Deploy an image or component (not available in this build)",
    responses={501: {"description": DEPLOY_UNAVAILABLE}},
)
def create_run(_who: LoggedIn) -> JSONResponse:
    return not_available()
