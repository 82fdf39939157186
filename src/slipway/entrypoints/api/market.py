"""The marketplace and VO lists over HTTP.

``/api/appliances`` and ``/api/vos`` carry the same operations and rights as
``slipway appliance`` and ``slipway vo``. Outside ``/api``, for subscribers
and without logging in: ``/vo/{vo}/image.list`` (the signed list, as AppDB
serves it), ``/vo/{vo}/image.list.json`` (the JSON it signs) and
``/files/sha512/{sha512}`` (a store-backed image file, with ranges). All
three answer conditional GETs with 304.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from slipway.domain.marketplace import (
    MAX_DESCRIPTION_CHARS,
    MAX_FILES_PER_VERSION,
    MAX_TITLE_CHARS,
    ApplianceQuery,
    ListPublication,
    VoRole,
)
from slipway.domain.modules import parse_rights
from slipway.entrypoints.api.deps import LoggedIn, Market, services
from slipway.entrypoints.api.schemas import NO_NUL
from slipway.entrypoints.api.threads import download
from slipway.entrypoints.market_json import (
    accepted_list_dict,
    appliance_dict,
    appliance_view_dict,
    publication_dict,
    version_dict,
    vo_view_dict,
)
from slipway.errors import InputError, NotFound
from slipway.services.marketplace import (
    DEFAULT_LIST_DAYS,
    MAX_LIST_DAYS,
    FileSource,
    NewAppliance,
    PushRequest,
)

__all__ = ["public", "router"]

router = APIRouter(prefix="/api", tags=["marketplace"])
public = APIRouter(tags=["published lists and files"])

ApplianceName = Annotated[str, Path(max_length=400, pattern=NO_NUL, examples=["alice/debian-12"])]
VoName = Annotated[str, Path(max_length=200, pattern=NO_NUL, examples=["vo.example.org"])]
Text = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS, pattern=NO_NUL)]
Short = Annotated[str, Field(max_length=MAX_TITLE_CHARS, pattern=NO_NUL)]
ListVersion = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="a list version")]
Rights = Annotated[str, Field(max_length=40, pattern=r"^[a-z,]*$", examples=["view"])]


class FileIn(BaseModel):
    """One image file: a local image store entry, or a URL (downloaded once
    to hash unless both ``sha512`` and ``size`` are given)."""

    image: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    format: str | None = Field(default=None, max_length=20, pattern=r"^[A-Za-z0-9]+$")
    sha512: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{128}$")
    size: int | None = Field(default=None, ge=1, le=2**50)


class ApplianceIn(BaseModel):
    title: Short
    description: Text = ""
    os: Short = "Linux"
    arch: Short = "x86_64"


class VersionIn(BaseModel):
    version: str = Field(max_length=64, examples=["2026.11.29"])
    files: list[FileIn] = Field(min_length=1, max_length=MAX_FILES_PER_VERSION)
    appliance: ApplianceIn | None = Field(
        default=None, description="title and so on, when the appliance is new"
    )
    notes: Text = ""
    expires: datetime | None = None
    details: dict[str, int | str] = Field(
        default={},
        max_length=8,
        description="os_name, os_version, arch, hypervisor, core_minimum, core_recommended, "
        "ram_minimum, ram_recommended (MiB)",
    )


class RightsIn(BaseModel):
    group: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    group_rights: Rights = "view"
    public_rights: Rights = ""


class VoIn(BaseModel):
    name: str = Field(max_length=200, examples=["vo.example.org"])
    manager: str = Field(max_length=64, pattern=NO_NUL)
    title: Short = ""
    description: Text = ""


class MemberIn(BaseModel):
    role: Literal["member", "manager"] = "member"


class EndorseIn(BaseModel):
    version: str = Field(max_length=64)


class PublishIn(BaseModel):
    days: int = Field(default=DEFAULT_LIST_DAYS, ge=1, le=MAX_LIST_DAYS)
    comment: Short = ""


# -- appliances --------------------------------------------------------------------


@router.get("/appliances", summary="Appliances you can see (public ones for anybody)")
def list_appliances(
    market: Market,
    text: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    os: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    arch: Annotated[str | None, Query(max_length=40, pattern=NO_NUL)] = None,
    vo: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    found, total = market.appliances(ApplianceQuery(None, text, os, arch, vo, limit, offset))
    return {"total": total, "appliances": [appliance_dict(a) for a in found]}


@router.post(
    "/appliances/{name:path}/versions",
    status_code=201,
    summary="Register a version (creating the appliance with `appliance`)",
)
async def register_version(
    request: Request, name: ApplianceName, body: VersionIn, market: Market, who: LoggedIn
) -> dict[str, Any]:
    sources = [
        FileSource(stored=f.image, url=f.url, format=f.format, sha512=f.sha512, size=f.size)
        for f in body.files
    ]
    new = None if body.appliance is None else NewAppliance(**body.appliance.model_dump())

    def register() -> Any:
        return market.register(
            name,
            body.version,
            sources,
            appliance=new,
            notes=body.notes,
            expires=body.expires,
            details=body.details,
        )

    created = await download(request, who.user, register)  # may download a file to hash it
    return version_dict(created, {f.sha512: market.file_url(f) for f in created.files})


class PushIn(BaseModel):
    """Where to push a version's image; the password is used once, never kept."""

    version: str = Field(max_length=64)
    target: str = Field(
        max_length=1000, pattern=r"^oci://\S+$", examples=["oci://registry.example.org/vo/web:1"]
    )
    username: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    password: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    admin_user: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    file: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{1,128}$", description="which file: its SHA-512's start"
    )


@router.post(
    "/appliances/{name:path}/artifacts",
    status_code=201,
    summary="Push a version's image as an OCI artifact (editors); lists name it from then on",
)
async def push_artifact(
    request: Request, name: ApplianceName, body: PushIn, market: Market, who: LoggedIn
) -> dict[str, Any]:
    push = PushRequest(body.target, body.username, body.password, body.admin_user, body.file)
    pushed = await download(request, who.user, market.push, f"{name}@{body.version}", push)
    return {"appliance": f"{name}@{body.version}", **asdict(pushed)}


@router.put("/appliances/{name:path}/rights", summary="Share an appliance (owner or admin)")
def share_appliance(
    name: ApplianceName, body: RightsIn, market: Market, _: LoggedIn
) -> dict[str, Any]:
    try:
        group_rights, public_rights = (
            parse_rights(body.group_rights),
            parse_rights(body.public_rights or "none"),
        )
    except ValueError as exc:
        raise InputError(str(exc), field="rights") from None
    shared = market.share(
        name, group=body.group, group_rights=group_rights, public_rights=public_rights
    )
    return appliance_dict(shared)


@router.get("/appliances/{name:path}", summary="An appliance, its versions and endorsements")
def show_appliance(name: ApplianceName, market: Market) -> dict[str, Any]:
    return appliance_view_dict(market.appliance(name))


# -- VOs ------------------------------------------------------------------------------


@router.get("/vos", summary="Every VO")
def list_vos(market: Market) -> list[dict[str, Any]]:
    return [
        {"name": v.name, "title": v.title, "obsoleted": v.obsoleted_at is not None}
        for v in market.vos()
    ]


@router.post("/vos", status_code=201, summary="Create a VO with its first manager (admins)")
def create_vo(body: VoIn, market: Market, _: LoggedIn) -> dict[str, Any]:
    vo = market.create_vo(body.name, body.manager, title=body.title, description=body.description)
    return vo_view_dict(market.vo(vo.name))


@router.get("/vos/{vo}", summary="A VO: members and draft for members; its list versions")
def show_vo(vo: VoName, market: Market) -> dict[str, Any]:
    return vo_view_dict(market.vo(vo))


@router.put("/vos/{vo}/members/{user}", status_code=204, summary="Add or change a member")
def set_member(
    vo: VoName,
    user: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
    body: MemberIn,
    market: Market,
    _: LoggedIn,
) -> Response:
    market.set_member(vo, user, VoRole(body.role))
    return Response(status_code=204)


@router.delete("/vos/{vo}/members/{user}", status_code=204, summary="Remove a member")
def remove_member(
    vo: VoName,
    user: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
    market: Market,
    _: LoggedIn,
) -> Response:
    market.set_member(vo, user, None)
    return Response(status_code=204)


@router.put(
    "/vos/{vo}/draft/{appliance:path}", status_code=204, summary="Endorse a version (managers)"
)
def endorse(
    vo: VoName, appliance: ApplianceName, body: EndorseIn, market: Market, _: LoggedIn
) -> Response:
    market.endorse(vo, f"{appliance}@{body.version}")
    return Response(status_code=204)


@router.delete("/vos/{vo}/draft/{appliance:path}", status_code=204, summary="Withdraw an appliance")
def withdraw(vo: VoName, appliance: ApplianceName, market: Market, _: LoggedIn) -> Response:
    market.withdraw(vo, appliance)
    return Response(status_code=204)


@router.post(
    "/vos/{vo}/publications", status_code=201, summary="Sign and publish the draft (managers)"
)
def publish(vo: VoName, body: PublishIn, market: Market, _: LoggedIn) -> dict[str, Any]:
    return publication_dict(market.publish(vo, days=body.days, comment=body.comment))


@router.get("/vos/{vo}/publications", summary="Every published list version, newest first")
def history(vo: VoName, market: Market) -> list[dict[str, Any]]:
    return [publication_dict(p) for p in market.vo(vo).publications]


@router.post("/vos/{vo}/obsolete", status_code=204, summary="Stop serving the list (managers)")
def obsolete(vo: VoName, market: Market, _: LoggedIn) -> Response:
    market.obsolete(vo)
    return Response(status_code=204)


# -- what subscribers fetch ----------------------------------------------------------------


@public.get(
    "/vo/{vo}/image.list",
    summary="The VO's signed list (S/MIME), newest version",
    response_class=Response,
    responses={200: {"content": {"application/pkcs7-mime": {}}}, 304: {}},
)
def signed_list(
    request: Request,
    vo: VoName,
    market: Market,
    version: ListVersion = None,
) -> Response:
    found = market.published(vo, version)
    return _conditional(request, found, found.signed, "application/pkcs7-mime")


@public.get(
    "/vo/{vo}/image.list.json",
    summary="The JSON the VO's newest list signs",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}, 304: {}},
)
def list_json(
    request: Request,
    vo: VoName,
    market: Market,
    version: ListVersion = None,
) -> Response:
    found = market.published(vo, version)
    return _conditional(request, found, found.document, "application/json", suffix="-json")


@public.get(
    "/files/sha512/{sha512}",
    summary="A store-backed image file (ranges; ETag is its SHA-512)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}},
)
def image_file(
    request: Request,
    sha512: Annotated[str, Path(pattern=r"^[0-9a-f]{128}$")],
    market: Market,
) -> Response:
    image, path = market.served_file(sha512)
    etag = f'"{image.sha512}"'
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{sha512[:16]}.{image.format}",
        headers={"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"},
    )


def _conditional(
    request: Request, found: ListPublication, body: bytes, media_type: str, suffix: str = ""
) -> Response:
    etag = f'"{found.etag[:32]}{suffix}"'
    modified = found.published_at.astimezone(UTC)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": "no-cache",
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
    elif _not_modified_since(request.headers.get("if-modified-since"), modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _not_modified_since(header: str | None, modified: datetime) -> bool:
    if not header:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return modified.replace(microsecond=0) <= since


# -- verifying any list ------------------------------------------------------------------


@router.post(
    "/imagelists/verify",
    summary="Verify a signed image list sent as the body, against the server's CA directory",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {}},
            "required": True,
            "description": "the list's bytes as fetched (S/MIME multipart/signed)",
        }
    },
)
async def verify_list(
    request: Request,
    endorser_dn: Annotated[str, Query(max_length=1000, pattern=NO_NUL)],
    who: LoggedIn,
    endorser_ca: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
    legacy: bool = False,
) -> dict[str, Any]:
    """What ``slipway imagelist verify`` does, with the operator's ``ca_dir``:
    200 with the list's images when accepted, 422 with every rejection code
    (``errors[].reason``) when not."""
    from slipway.adapters.imagelists import (
        TrustPolicy,
        load_ca_dir,
        parse_endorser_name,
        verify_image_list,
    )

    ca_dir = services(request).ca_dir
    if ca_dir is None:
        raise NotFound("this server verifies no lists: it has no CA directory")
    message = await request.body()
    policy = TrustPolicy(
        anchors=load_ca_dir(ca_dir),
        endorser_dn=parse_endorser_name(endorser_dn, field="query.endorser_dn"),
        endorser_ca=parse_endorser_name(endorser_ca, field="query.endorser_ca")
        if endorser_ca
        else None,
        legacy=legacy,
    )
    # A 17 MiB list parses for a while: in the slow-work pool, one per user,
    # never in the threads log-ins hash passwords in.
    verified = await download(
        request, who.user, verify_image_list, message, policy, now=datetime.now(UTC)
    )
    return accepted_list_dict(verified, "body")
