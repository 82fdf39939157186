"""``/api/me``, ``/api/users``, ``/api/groups`` and ``/api/tokens``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from slipway.entrypoints.api.deps import LoggedIn, User, services
from slipway.entrypoints.api.schemas import NO_NUL
from slipway.entrypoints.api.threads import costly

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["users and tokens"])

UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_.\-]{0,63}$", examples=["alice"])]
GroupName = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class Me(BaseModel):
    user: str
    admin: bool
    groups: list[str]
    editor_of: list[str] = Field(
        default=[], description="groups in whose namespace (GROUP/…) the user creates modules"
    )
    anonymous: bool


class NewUser(BaseModel):
    name: UserName
    password: str | None = Field(default=None, min_length=8, max_length=1000)
    admin: bool = False
    groups: list[GroupName] = []


class NewGroup(BaseModel):
    name: GroupName
    members: list[UserName] = []
    editors: list[UserName] = Field(
        default=[], description="members who may also create modules under NAME/"
    )


class Password(BaseModel):
    password: str = Field(min_length=8, max_length=1000)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL, examples=["ci"])


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime


class CreatedToken(TokenOut):
    token: str = Field(description="shown this once; only its hash is kept")


@router.get("/me", summary="Who the request acts as")
def me(request: Request, who: User) -> Me:
    admin, groups, editor_of = services(request).identity.whoami(who.user)
    return Me(
        user=who.user,
        admin=admin,
        groups=sorted(groups),
        editor_of=sorted(editor_of),
        anonymous=who.anonymous,
    )


@router.post("/users", status_code=201, summary="Add a user (admins only)")
async def add_user(request: Request, body: NewUser, who: LoggedIn) -> Me:
    identity = services(request).identity

    def add() -> None:
        identity.add_user(who.user, body.name, admin=body.admin, groups=body.groups)
        if body.password is not None:
            identity.set_password(who.user, body.name, body.password)

    await costly(request, add)  # a password hash
    return Me(user=body.name, admin=body.admin, groups=sorted(body.groups), anonymous=False)


@router.put("/users/{name}/password", status_code=204, summary="Set a password (self or admin)")
async def set_password(
    request: Request,
    name: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
    body: Password,
    who: LoggedIn,
) -> Response:
    await costly(request, services(request).identity.set_password, who.user, name, body.password)
    return Response(status_code=204)


@router.post("/groups", status_code=201, summary="Add a group (admins only)")
def add_group(request: Request, body: NewGroup, who: LoggedIn) -> NewGroup:
    services(request).identity.add_group(who.user, body.name, body.members, body.editors)
    return body


@router.get("/tokens", summary="Your API tokens (names only)")
def tokens(request: Request, who: LoggedIn) -> list[TokenOut]:
    return [
        TokenOut(id=t.id, name=t.name, created_at=t.created_at)
        for t in services(request).identity.tokens(who.user)
    ]


@router.post("/tokens", status_code=201, summary="Create an API token, shown once")
def create_token(request: Request, body: TokenIn, who: LoggedIn) -> CreatedToken:
    made = services(request).identity.create_token(who.user, body.name)
    record = made.record
    return CreatedToken(
        id=record.id, name=record.name, created_at=record.created_at, token=made.token
    )


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of your tokens")
def revoke_token(
    request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: LoggedIn
) -> Response:
    services(request).identity.revoke_token(who.user, token_id)
    return Response(status_code=204)
