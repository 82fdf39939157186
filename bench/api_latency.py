"""API latency: listing and searching 10,000 images and listing 100,000 runs
through the REST API, against the same query through the store directly (the
baseline), on SQLite and PostgreSQL.

    .venv/bin/python bench/api_latency.py [--images 10000] [--runs 100000]
        [--requests 200] [--postgres postgresql://postgres@127.0.0.1:5432/test]

The API is called in-process (Starlette's TestClient: the whole ASGI stack,
token check, service, JSON; no network). Image requests act as a user who owns
nothing and sees the public two thirds of the images, so the rights filter runs
in every query. Runs are spread over ten owners, five clouds, every state and a
year; run requests act as one of those owners (a tenth of the runs) or as the
admin, who may list everyone's.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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

RUN_OWNERS = ("reader", *(f"user-{n}" for n in range(1, 10)))
# Most runs have ended; a few are live or on their way. Weights in percent.
RUN_STATES = {
    "terminated": 70,
    "failed": 12,
    "cancelled": 5,
    "ready": 8,
    "pending": 1,
    "provisioning": 1,
    "booting": 1,
    "contextualizing": 1,
    "terminating": 1,
}
_FORWARD = (
    "pending",
    "provisioning",
    "booting",
    "contextualizing",
    "ready",
    "terminating",
    "terminated",
)
PATHS = {  # the states a run went through, in order
    **{state: _FORWARD[: n + 1] for n, state in enumerate(_FORWARD)},
    "failed": (*_FORWARD[:4], "failed"),
    "cancelled": (*_FORWARD[:2], "cancelled"),
}
# (label, who asks, query parameters); "runs" is the run owner's share of all.
RUN_QUERIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("first page (50)", "reader", {}),
    ("page at offset 5000", "reader", {"offset": 5000}),
    ("state=ready", "reader", {"state": "ready"}),
    ("state=failed, offset 500", "reader", {"state": "failed", "offset": 500}),
    ("cloud=ultimum", "reader", {"cloud": "ultimum"}),
    ("admin: all, first page", "owner", {"all": "true"}),
    ("admin: all, offset 50000", "owner", {"all": "true", "offset": 50000}),
    ("admin: all, state=pending", "owner", {"all": "true", "state": "pending"}),
)


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


def populate(url: str, count: int, runs: int) -> tuple[Any, dict[str, str]]:
    """A migrated store with the examples, ``count`` images and ``runs`` runs;
    returns the engine and API tokens of the reading user and of the admin
    (``owner``, the first user the store saw)."""
    from slipway.adapters.definitions.loader import load_paths
    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.database import make_engine, migrate
    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.domain.modules import Right
    from slipway.services.catalog import CatalogService
    from slipway.services.identity import IdentityService

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
    populate_runs(engine, runs)
    if engine.dialect.name == "postgresql":
        # Autovacuum would vacuum and gather statistics soon after a bulk
        # load; do it now.
        from sqlalchemy import text

        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    access = IdentityService(uow, Argon2Hasher())
    access.add_user("owner", "reader")
    return engine, {user: access.create_token(user, "bench").token for user in ("reader", "owner")}


def run_rows(count: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``count`` runs as table rows, each with its event rows: JSON columns of
    the sizes real runs have (a sealed private key, public keys, recipes and
    security groups in ``target``; addresses, links and for failed runs the
    console's last lines in ``parameters``)."""
    rng = random.Random(42)
    states, weights = zip(*RUN_STATES.items(), strict=True)
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    step = timedelta(days=365) / max(count, 1)
    for index in range(count):
        run_id = hashlib.blake2b(index.to_bytes(8, "big"), digest_size=6).hexdigest()
        owner = RUN_OWNERS[index % len(RUN_OWNERS)]
        cloud = CLOUDS[rng.randrange(len(CLOUDS))]
        if index >= count - 2000:  # only the newest runs can still be live
            state = rng.choices(states, weights)[0]
        else:
            state = rng.choices(("terminated", "failed", "cancelled"), (70, 12, 5))[0]
        created = now - step * (count - index) + timedelta(microseconds=rng.randrange(1000))
        path = PATHS[state]
        at = [created + timedelta(seconds=20 * n) for n in range(len(path))]
        address = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
        sealed = rng.randbytes(459).hex()[:612]  # a Fernet token of an ed25519 key
        target = {
            "native_id": f"{cloud}-{index % 10_000}",
            "flavor": ("small", "medium", "large")[index % 3],
            "cpu": 1 + index % 4,
            "ram": 1 + index % 8,
            "disk": 10,
            "login_user": "debian",
            "platform": "debian",
            "security_groups": [
                {
                    "name": "web",
                    "action": "ensure",
                    "rules": [
                        {"protocol": "tcp", "ports": p, "source": s}
                        for p in ("22", "80")
                        for s in ("0.0.0.0/0", "::/0")
                    ],
                }
            ],
            "ports": [{"port": 80, "protocol": "tcp", "name": "http"}],
            "recipes": {
                "packages": ["nginx"],
                "pre_install": "",
                "post_install": "systemctl enable --now nginx",
                "deployment": "systemctl is-active --quiet nginx",
            },
            "kind": "component",
            "user_keys": [f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{sealed[:43]} {owner}@laptop"],
            "run_key": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{sealed[50:93]} slipway-run-{run_id}",
            "sealed_key": sealed,
            "driver": "local" if cloud == "local" else "openstack",
        }
        parameters: dict[str, Any] = {
            "cloud": cloud,
            "native.image": target["native_id"],
            "flavor": target["flavor"],
            "login.user": "debian",
        }
        machine = f"i-{run_id}" if "provisioning" in path[:-1] else None
        if machine:
            parameters["instance.id"] = machine
        if "booting" in path[:-1]:
            parameters |= {
                "hostname": address,
                "ip": address,
                "ssh.port": 22,
                "url.ssh": f"ssh://debian@{address}:22",
                "url.service.http": f"http://{address}:80/",
            }
        if "contextualizing" in path[:-1]:
            parameters |= {"guest.cpu": target["cpu"], "guest.ram_kb": 2_030_000}
            parameters["guest.ram_gb"] = 1.94
        if state == "failed":
            parameters["recipes.output"] = "\n".join(
                f"Setting up package-{n} ({n}.0-1) ... E: dpkg was interrupted" for n in range(20)
            )
        row = {
            "id": run_id,
            "owner": owner,
            "module": "examples/apps/nginx",
            "cloud": cloud,
            "state": state,
            "step": "contextualizing" if state == "failed" else "",
            "message": "deployment check exited 3" if state == "failed" else "",
            "keep_running": "on-success",
            "machine_id": None if state in ("terminated", "cancelled") else machine,
            "target": target,
            "parameters": parameters,
            "timestamps": {s: t.isoformat() for s, t in zip(path, at, strict=True)},
            "created_at": created,
            "deadline": created + timedelta(minutes=30),
            "version": len(path),
            "lease_owner": None,
            "lease_until": None,
            "next_step_at": None,
        }
        events = [
            {"run_id": run_id, "at": t, "state": s, "message": f"{s} on {cloud}"}
            for s, t in zip(path, at, strict=True)
        ]
        yield row, events


def populate_runs(engine: Any, count: int) -> None:
    """``count`` runs and their events, inserted in bulk: the set-up, not what
    is measured."""
    from sqlalchemy import insert

    from slipway.adapters.store.tables import RunEventRow, RunRow

    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for row, row_events in run_rows(count):
            batch.append(row)
            events += row_events
            if len(batch) == 2000:
                connection.execute(insert(RunRow), batch)
                connection.execute(insert(RunEventRow), events)
                batch, events = [], []
        if batch:
            connection.execute(insert(RunRow), batch)
            connection.execute(insert(RunEventRow), events)
    print(f"  inserted {count} runs in {time.perf_counter() - started:.0f} s", flush=True)


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


def run(label: str, url: str, images: int, runs: int, requests: int) -> list[str]:
    from fastapi.testclient import TestClient

    from slipway.adapters.security.passwords import Argon2Hasher
    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.entrypoints.api.app import create_app
    from slipway.entrypoints.api.deps import Services
    from slipway.services.catalog import CatalogService
    from slipway.services.identity import IdentityService

    print(f"{label}: populating", flush=True)
    engine, tokens = populate(url, images, runs)

    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine)

    services = Services(
        lambda user: CatalogService(uow, user),
        IdentityService(uow, Argon2Hasher()),
        lambda user: run_service(uow, user),
    )
    # Entered, the client keeps one event loop for every request, as a server
    # does; otherwise it would start a thread and a loop per request.
    with TestClient(create_app(services, dashboard=False)) as client:
        rows = measure_images(label, uow, client, tokens, requests)
        if runs:
            rows += measure_runs(f"{label} | runs", uow, client, tokens, requests)
    engine.dispose()
    return rows


def measure_images(
    label: str, uow: Callable[[], Any], client: Any, tokens: dict[str, str], requests: int
) -> list[str]:
    """Image lists and searches as a user who sees the public two thirds."""
    from slipway.domain.modules import Access, Kind
    from slipway.services.ports import ModuleQuery

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

        through_api = api_call(client, "/api/modules", tokens["reader"], {"limit": 50, **params})
        total = through_api().json()["total"]
        rows.append(row(f"{label} | images", name, total, through_store, through_api, requests))
    return rows


def count_runs(
    uow: Callable[[], Any], owner: str | None, state: str | None, cloud: str | None
) -> int:
    """How many runs a list query matches (for the table; not measured)."""
    from sqlalchemy import func, select

    from slipway.adapters.store.tables import RunRow

    query = select(func.count()).select_from(RunRow)
    for column, value in ((RunRow.owner, owner), (RunRow.state, state), (RunRow.cloud, cloud)):
        if value is not None:
            query = query.where(column == value)
    with uow() as unit:
        return int(unit.runs.session.scalar(query))


def run_service(uow: Callable[[], Any], user: str) -> Any:
    """A run service that can list and show runs; it never deploys here."""
    from slipway.adapters.keys import new_key_pair
    from slipway.services.catalog import CatalogService
    from slipway.services.deploy import RunService

    unused: Any = None  # reading runs needs no connectors, vault or queue
    return RunService(uow, CatalogService(uow, user), unused, unused, unused, new_key_pair)


def api_call(client: Any, path: str, token: str, params: dict[str, Any]) -> Callable[[], Any]:
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> Any:
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response

    return call


def row(
    label: str,
    name: str,
    matches: object,
    baseline: Callable[[], object],
    subject: Callable[[], object],
    requests: int,
) -> str:
    (store_p50, store_p99), (api_p50, api_p99) = measure(baseline, subject, requests)
    line = (
        f"| {label} | {name} | {matches} | {store_p50:.1f} | {store_p99:.1f} "
        f"| {api_p50:.1f} | {api_p99:.1f} | {api_p50 / store_p50:.1f}x |"
    )
    print(line, flush=True)
    return line


def measure_runs(
    label: str, uow: Callable[[], Any], client: Any, tokens: dict[str, str], requests: int
) -> list[str]:
    """The run lists a user asks for, and one run with its timeline."""
    from slipway.domain.runs import RunState

    rows = []
    for name, user, params in RUN_QUERIES:
        owner = None if params.get("all") == "true" else user
        states = [RunState(params["state"])] if "state" in params else None

        def through_store(
            owner: str | None = owner,
            states: list[RunState] | None = states,
            params: dict[str, Any] = params,
        ) -> object:
            with uow() as unit:
                return unit.runs.list(
                    owner=owner,
                    states=states,
                    cloud=params.get("cloud"),
                    limit=50,
                    offset=params.get("offset", 0),
                )

        through_api = api_call(client, "/api/runs", tokens[user], {"limit": 50, **params})
        through_api()
        matches = count_runs(uow, owner, params.get("state"), params.get("cloud"))
        rows.append(row(label, name, matches, through_store, through_api, requests))
    with uow() as unit:
        run_id = unit.runs.list(owner="reader", limit=1000)[-1].id

    def one_through_store() -> object:
        with uow() as unit:
            return unit.runs.get(run_id), unit.runs.events(run_id)

    one_through_api = api_call(client, f"/api/runs/{run_id}", tokens["reader"], {})
    events = len(one_through_api().json()["events"])
    rows.append(
        row(
            label,
            "one run with its events",
            f"{events} events",
            one_through_store,
            one_through_api,
            requests,
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000, help="0: images only")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", help="server URL; a database slipway_bench is made there")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    header = [
        "| store | list | query | matches | store p50 (ms) | store p99 (ms) "
        "| API p50 (ms) | API p99 (ms) | API / store (p50) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            rows += run(
                "SQLite", f"sqlite:///{folder}/bench.db", args.images, args.runs, args.requests
            )
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
            rows += run("PostgreSQL", url, args.images, args.runs, args.requests)
        finally:
            with admin.connect() as connection:
                connection.execute(text("DROP DATABASE IF EXISTS slipway_bench WITH (FORCE)"))
            admin.dispose()
    print("\n".join(["", *header, *rows]))


if __name__ == "__main__":
    main()
