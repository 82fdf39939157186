"""``/api/images``: the local image store over HTTP — list and show for
anyone logged in (with each image's check and boot-test results), import for
admins, whose store it is.

An import's body is the image itself (qcow2, raw, VMDK or OVA), streamed to
a temporary file in the store's folder — never held in memory — and capped
at :data:`MAX_IMAGE_BYTES`; then stored as ``slipway image import`` does
(converted to qcow2, checked).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from slipway.domain.clouds import LOCAL_IMAGE_ID
from slipway.entrypoints.api.deps import LoggedIn, services
from slipway.entrypoints.api.threads import costly
from slipway.errors import NotFound, PermissionDenied
from slipway.imagekit.store import ImageStore

__all__ = ["MAX_IMAGE_BYTES", "router"]

router = APIRouter(prefix="/api", tags=["local image store"])

MAX_IMAGE_BYTES = 64 * 1024**3
"""The largest image an import takes over HTTP: 64 GiB."""

ImageName = Annotated[str, PathParam(pattern=LOCAL_IMAGE_ID.pattern, examples=["web-1"])]


def _store(request: Request) -> ImageStore:
    store = services(request).images
    if store is None:
        raise NotFound("this server has no local image store")
    return store


@router.get("/images", summary="The stored images, with their check and boot-test results")
def list_images(request: Request, _: LoggedIn) -> list[dict[str, Any]]:
    return [entry.to_dict() for entry in _store(request).list()]


@router.get("/images/{name}", summary="One stored image")
def show_image(request: Request, name: ImageName, _: LoggedIn) -> dict[str, Any]:
    return _store(request).get(name).to_dict()


@router.post(
    "/images",
    status_code=201,
    summary="Import an image sent as the body (admins); it is converted to qcow2 and checked",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {}}, "required": True}},
)
async def import_image(
    request: Request,
    name: Annotated[str, Query(pattern=LOCAL_IMAGE_ID.pattern)],
    who: LoggedIn,
) -> dict[str, Any]:
    admin, _, _ = services(request).identity.whoami(who.user)
    if not admin:
        raise PermissionDenied("only an admin may import into the local image store")
    store = _store(request)
    store.ensure_free(name)
    store.root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload.", dir=store.root)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            async for chunk in request.stream():
                sink.write(chunk)
        entry = await costly(request, store.import_file, tmp, name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return entry.to_dict()
