"""API latency: listing and searching 10,000 images through the REST API,
against the same query through the store directly (the baseline), on SQLite
and PostgreSQL.

    .venv/bin/python bench/api_latency.py [--images 10000] [--requests 200]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]

The API is called in-process (Starlette's TestClient: the whole ASGI stack,
token check, service, JSON; no network). Requests act as a user who owns
nothing and sees the public two thirds of the images, so the rights filter runs in
every query. Runs are not measured yet: they arrive with the deploy layer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DISTRIBUTIONS = ("debian", "ubuntu", "almalinux", "rocky")
CLOUDS = ("exoscale-ch-gva", "exoscale-ch-dk", "ultimum", "aws-eu-west-1", "local")

QUERIES: dict[str, dict[str, Any]] = {
    "first page (50)": {},
    "page at offset 4000": {"offset": 4000},
    "search name 'img-0421'": {"q": "img-0421"},
    "search 'ubuntu'": {"q": "ubuntu"},
    "os=rocky & cloud=ultimum": {"os": "rocky", "cloud": "ultimum"},
}


class Document:
    """A definition to import, as the definitions adapter would make it."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        from slipway.domain.modules import Kind

        self.name, self.kind, self.document, self.file = name, Kind.IMAGE, document, name

    def error(self, message: str, *path: str | int, hint: str | None = None) -> Any:
        from slipway.errors import DefinitionError

        return DefinitionError(message, file=self.file, key=".".join(map(str, path)) or None)


def image(index: int) -> Document:
    distribution = DISTRIBUTIONS[index % len(DISTRIBUTIONS)]
    clouds = [c for n, c in enumerate(CLOUDS) if (index >> n) & 1] or ["local"]
    document: dict[str, Any] = {
        "kind": "image",
        "description": f"Benchmark image {index} on {distribution}",
        "platform": "debian" if distribution in ("debian", "ubuntu") else "redhat",
        "os": {"distribution": distribution, "version": "1", "arch": "x86_64"},
        "login_user": distribution,
        "native": {cloud: {"id": f"{cloud}-{index}"} for cloud in clouds},
        "size": {"cpu": 1 + index % 4, "ram": 1 + index % 8},
    }
    if index % 10 == 0:  # some inherit, so facets come from resolution
        document = {
            "kind": "image",
            "parent": "examples/images/debian-12",
            "description": f"Benchmark child {index}",
        }
    return Document(f"bench/images/img-{index:05d}", document)


def populate(url: str, count: int) -> tuple[Any, str]:
    """A migrated store with the examples and ``count`` images; returns the
    engine and an API token of the reading user."""
    from slipway.adapters.definitions.loader import load_paths
    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.database import make_engine, migrate
    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.domain.modules import Right
    from slipway.services.access import AccessService
    from slipway.services.catalog import CatalogService

    engine = make_engine(url)
    migrate(engine)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    owner = CatalogService(uow, "owner")
    owner.import_files(load_paths([REPO / "examples"], REPO))
    started = time.perf_counter()
    batch = 1000
    for start in range(0, count, batch):
        owner.import_files([image(i) for i in range(start, min(start + batch, count))])
    public = frozenset({Right.VIEW})
    for name in ["examples/images/debian-12"] + [
        f"bench/images/img-{i:05d}" for i in range(count) if i % 3 != 1
    ]:
        owner.share(name, group=None, group_rights=frozenset(), public_rights=public)
    print(f"  imported {count} images in {time.perf_counter() - started:.0f} s", flush=True)
    if engine.dialect.name == "postgresql":
        # Autovacuum would gather statistics soon after a bulk load; do it now.
        from sqlalchemy import text

        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    access = AccessService(uow, Argon2Hasher())
    owner.add_user("reader")
    return engine, access.create_token("reader", "bench").token


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def measure(
    baseline: Callable[[], object], subject: Callable[[], object], requests: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """p50 and p99 (ms) of both, called alternately so that load from other
    processes on the machine falls on both alike."""
    for _ in range(max(5, requests // 10)):
        baseline()
        subject()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(requests):
        for call, found in ((baseline, samples[0]), (subject, samples[1])):
            started = time.perf_counter()
            call()
            found.append(time.perf_counter() - started)
    return percentiles(samples[0]), percentiles(samples[1])


def run(label: str, url: str, count: int, requests: int) -> list[str]:
    from fastapi.testclient import TestClient

    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.domain.modules import Access, Kind
    from slipway.entrypoints.api.app import create_app
    from slipway.entrypoints.api.deps import Services
    from slipway.services.access import AccessService
    from slipway.services.catalog import CatalogService
    from slipway.services.ports import ModuleQuery

    print(f"{label}: populating", flush=True)
    engine, token = populate(url, count)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    services = Services(lambda user: CatalogService(uow, user), AccessService(uow, Argon2Hasher()))
    client = TestClient(create_app(services, dashboard=False))
    headers = {"Authorization": f"Bearer {token}"}
    reader = Access("reader")
    rows = []
    for name, params in QUERIES.items():
        query = ModuleQuery(
            kinds=(Kind.IMAGE, Kind.COMPONENT),
            text=params.get("q"),
            os=params.get("os"),
            cloud=params.get("cloud"),
            viewer=reader,
            limit=50,
            offset=params.get("offset", 0),
        )

        def through_store(query: ModuleQuery = query) -> object:
            with uow() as unit:
                return unit.store.search(query)

        def through_api(params: dict[str, Any] = params) -> object:
            response = client.get("/api/modules", params={"limit": 50, **params}, headers=headers)
            assert response.status_code == 200, response.text
            return response

        total = through_api().json()["total"]  # type: ignore[attr-defined]
        (store_p50, store_p99), (api_p50, api_p99) = measure(through_store, through_api, requests)
        rows.append(
            f"| {label} | {name} | {total} | {store_p50:.1f} | {store_p99:.1f} "
            f"| {api_p50:.1f} | {api_p99:.1f} | {api_p50 / store_p50:.1f}x |"
        )
        print(rows[-1], flush=True)
    client.close()
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", help="server URL; a database slipway_bench is made there")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    header = [
        "| store | query | matches | store p50 (ms) | store p99 (ms) "
        "| API p50 (ms) | API p99 (ms) | API / store (p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            rows += run("SQLite", f"sqlite:///{folder}/bench.db", args.images, args.requests)
    if args.postgres:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        server = make_url(args.postgres).set(drivername="postgresql+psycopg")
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS slipway_bench WITH (FORCE)"))
            connection.execute(text("CREATE DATABASE slipway_bench"))
        url = server.set(database="slipway_bench").render_as_string(hide_password=False)
        try:
            rows += run("PostgreSQL", url, args.images, args.requests)
        finally:
            with admin.connect() as connection:
                connection.execute(text("DROP DATABASE IF EXISTS slipway_bench WITH (FORCE)"))
            admin.dispose()
    print("\n".join(["", *header, *rows]))


if __name__ == "__main__":
    main()
