"""Search, facets, credentials and log-in attempts on every store: memory,
SQLite and PostgreSQL answer the same, so filtering and paging can live in SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from slipway.domain.modules import Kind, Right
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService
from slipway.services.ports import SessionRecord, UnitOfWork
from tests.conftest import cheap_hasher

CHILD = "kind: image\nparent: {parent}\ndescription: {description}\n"


@pytest.fixture
def as_user(
    store_uow: Callable[[], UnitOfWork], examples: list[LoadedDefinition]
) -> Callable[[str], CatalogService]:
    CatalogService(store_uow, "alice").import_files(examples)
    return lambda user: CatalogService(store_uow, user)


def names(page: object) -> list[str]:
    return [row.version.name for row in page.items]  # type: ignore[attr-defined]


def test_filters_combine_and_pages_follow_names(as_user: Callable[[str], CatalogService]) -> None:
    alice = as_user("alice")
    images = names(alice.search(kinds=(Kind.IMAGE,), limit=None))
    assert images == sorted(images) and len(images) == 5
    page = alice.search(kinds=(Kind.IMAGE,), limit=2, offset=1)
    assert names(page) == images[1:3] and page.total == 5
    assert names(alice.search(text="UBUNTU 24")) == ["examples/images/ubuntu-24.04"]
    assert names(alice.search(text="ubuntu-22")) == [
        "examples/images/ubuntu-22.04",
        "examples/images/ubuntu-22.04-large",
    ]
    assert names(alice.search(text="AlmaLinux")) == ["examples/images/almalinux-9"]
    assert names(alice.search(os="ubuntu", owner="alice", kinds=(Kind.IMAGE,))) == [
        "examples/images/ubuntu-22.04",
        "examples/images/ubuntu-22.04-large",
        "examples/images/ubuntu-24.04",
    ]
    assert names(alice.search(owner="bob")) == []
    assert names(alice.search(text="100%_")) == []  # LIKE wildcards are literal


def test_facets_follow_inheritance_and_a_parent_changing(
    as_user: Callable[[str], CatalogService],
) -> None:
    alice = as_user("alice")
    parent = "alice/base"
    alice.import_files(
        [load_text("kind: image\nnative: {ultimum: {id: a}}\n", f"{parent}.yaml", parent)]
    )
    child = load_text(
        CHILD.format(parent=parent, description="child"), "alice/child.yaml", "alice/child"
    )
    alice.import_files([child])
    assert names(alice.search(cloud="ultimum", text="alice/")) == [parent, "alice/child"]
    assert names(alice.search(cloud="local", text="alice/")) == []
    moved = load_text("kind: image\nnative: {local: {id: b}}\n", f"{parent}.yaml", parent)
    alice.import_files([moved])
    assert names(alice.search(cloud="local", text="alice/")) == [parent, "alice/child"]
    row = alice.search(text="alice/child").items[0]
    assert (row.facets.parent, row.facets.description) == (parent, "child")


def test_lists_hold_only_what_the_user_may_view(
    as_user: Callable[[str], CatalogService], store_uow: Callable[[], UnitOfWork]
) -> None:
    alice = as_user("alice")
    people = IdentityService(store_uow, cheap_hasher())
    people.add_user("alice", "bob")
    people.add_user("alice", "carol")
    people.add_group("alice", "team", ["carol"])
    alice.copy("examples/images/debian-12", "alice/team")
    alice.copy("examples/images/debian-12", "alice/public")
    alice.share(
        "alice/team",
        group="team",
        group_rights=frozenset({Right.DEPLOY}),
        public_rights=frozenset(),
    )
    alice.share(
        "alice/public", group=None, group_rights=frozenset(), public_rights=frozenset({Right.VIEW})
    )
    assert names(as_user("bob").search(text="alice/")) == ["alice/public"]
    assert names(as_user("carol").search(text="alice/")) == ["alice/public", "alice/team"]
    assert as_user("bob").search().total == 1


def test_credentials_round_trip(store_uow: Callable[[], UnitOfWork]) -> None:
    access = IdentityService(store_uow, cheap_hasher())
    password = access.ensure_first_admin()
    assert password is not None
    session = access.login("admin", password)
    assert access.session(session.cookie) is not None
    first = access.create_token("admin", "one")
    second = access.create_token("admin", "two")
    assert [t.name for t in access.tokens("admin")] == ["one", "two"]
    assert access.token_user(second.token) == "admin"
    access.revoke_token("admin", first.record.id)
    assert [t.id for t in access.tokens("admin")] == [second.record.id]
    with store_uow() as uow:
        later = datetime.now(UTC) + timedelta(hours=1)
        uow.identity.add_session("f" * 64, SessionRecord("admin", "csrf", later))
        uow.commit()
    with store_uow() as uow:
        found = uow.identity.session_of("f" * 64)
        assert found is not None and found.expires_at.tzinfo is not None


def test_login_attempts_round_trip_and_expire(store_uow: Callable[[], UnitOfWork]) -> None:
    from slipway.domain.lockouts import Attempts

    now = datetime(2026, 1, 1, tzinfo=UTC)
    counted = Attempts(3, now, now + timedelta(minutes=5))
    with store_uow() as uow:
        assert uow.identity.attempts_for_update("a" * 64) is None
        uow.identity.save_attempts("a" * 64, counted, now + timedelta(minutes=15))
        uow.identity.save_attempts("b" * 64, Attempts(1, now), now + timedelta(minutes=1))
        uow.commit()
    with store_uow() as uow:
        assert uow.identity.attempts_for_update("a" * 64) == counted
        uow.identity.expire_attempts(now + timedelta(minutes=2))
        uow.commit()
    with store_uow() as uow:
        assert uow.identity.attempts_for_update("b" * 64) is None
        assert uow.identity.attempts_for_update("a" * 64) == counted
        uow.identity.clear_attempts("a" * 64)
        uow.commit()
    with store_uow() as uow:
        assert uow.identity.attempts_for_update("a" * 64) is None


def test_sessions_end_per_user_and_expire(store_uow: Callable[[], UnitOfWork]) -> None:
    now = datetime.now(UTC)
    with store_uow() as uow:
        for user in ("alice", "bob"):
            uow.identity.ensure_user(user)
        uow.identity.add_session("1" * 64, SessionRecord("alice", "c", now + timedelta(hours=1)))
        uow.identity.add_session("2" * 64, SessionRecord("alice", "c", now + timedelta(hours=1)))
        uow.identity.add_session("3" * 64, SessionRecord("bob", "c", now + timedelta(hours=1)))
        uow.identity.add_session("4" * 64, SessionRecord("bob", "c", now - timedelta(hours=1)))
        uow.commit()
    with store_uow() as uow:
        uow.identity.end_sessions("alice")
        uow.identity.expire_sessions(now)
        uow.commit()
    with store_uow() as uow:
        found = [uow.identity.session_of(c * 64) for c in "1234"]
        assert [s.user if s else None for s in found] == [None, None, "bob", None]
