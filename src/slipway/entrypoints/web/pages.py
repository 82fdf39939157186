"""The dashboard's pages: catalog, image page with the Deploy dialog, clouds,
the marketplace with its appliance and VO pages (the Sync pages are in
:mod:`.sync_pages`).
Server-rendered with Jinja2; htmx swaps the parts that change (catalog
results, the dialog's flavor preview, diffs). Every page calls the same
services as the API, acting as the logged-in user (or anonymous)."""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from slipway.connectors.registry import unavailable_reason
from slipway.domain.diff import flatten
from slipway.domain.marketplace import ApplianceQuery, VoRole
from slipway.domain.modules import Kind, ModuleRef, Right
from slipway.domain.runs import TERMINAL
from slipway.entrypoints.api.deps import actor, services
from slipway.entrypoints.api.modules import module_ref
from slipway.entrypoints.api.runs import DEPLOY_UNAVAILABLE, RunId, not_available, run_service
from slipway.entrypoints.api.schemas import NO_NUL
from slipway.entrypoints.api.threads import blocking
from slipway.entrypoints.web import session, sync_pages
from slipway.entrypoints.web.session import login_url, page, require_form_csrf
from slipway.errors import InputError, NotAuthenticated, NotFound, Unsupported
from slipway.services.catalog import CatalogService
from slipway.services.deploy import DeployRequest, RunService
from slipway.services.marketplace import (
    DEFAULT_LIST_DAYS,
    FileSource,
    MarketplaceService,
    NewAppliance,
)

__all__ = ["install"]

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
DISTRIBUTIONS = ("almalinux", "centos", "debian", "fedora", "opensuse", "rocky", "ubuntu")
Text = Annotated[str, Query(max_length=200, pattern=NO_NUL)]
MAX_PAGE = 100_000


def _catalog(request: Request) -> CatalogService:
    return services(request).catalog(actor(request).user)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/catalog", status_code=303)


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    q: Text = "",
    os: Text = "",
    cloud: Text = "",
    owner: Text = "",
    kind: Text = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    if kind not in ("", Kind.IMAGE, Kind.COMPONENT):
        raise InputError(f"kind must be image or component, not {kind!r}", field="query.kind")
    catalog = _catalog(request)
    clouds = [c.name for c, _ in catalog.clouds()]
    if cloud and cloud not in clouds:
        raise InputError(f"unknown cloud {cloud!r}", field="query.cloud")
    results = catalog.search(
        kinds=(Kind(kind),) if kind else (Kind.IMAGE, Kind.COMPONENT),
        text=q,
        os=os,
        cloud=cloud,
        owner=owner,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    filters = {"q": q, "os": os, "cloud": cloud, "owner": owner, "kind": kind}
    pages = max(1, -(-results.total // PAGE_SIZE))
    context: dict[str, Any] = {
        "results": results,
        "filters": filters,
        "page_number": page_number,
        "pages": pages,
        "query": "&".join(f"{k}={quote(v)}" for k, v in filters.items() if v),
    }
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "results":
        return page(request, "_results.html", **context)
    return page(request, "catalog.html", clouds=clouds, distributions=DISTRIBUTIONS, **context)


def _hierarchy(resolved: Any, label: str) -> list[dict[str, Any]]:
    origin: dict[str, str] = resolved.resolved.origin
    rows = []
    for path, value in flatten(resolved.document).items():
        source = origin.get(path) or next(
            (origin[p] for p in sorted(origin, key=len, reverse=True) if path.startswith(p + ".")),
            "",
        )
        rows.append(
            {"path": path, "value": _compact(value), "origin": source, "own": source == label}
        )
    return rows


@router.get("/images/{name:path}/-/deploy", response_class=HTMLResponse)
def deploy_dialog(request: Request, name: str, cloud: Text = "") -> Response:
    """The Deploy dialog, or (htmx) just its preview of ``cloud``."""
    ref = module_ref(name)
    catalog = _catalog(request)
    version = catalog.show(str(ref))
    rights = catalog.rights_on(str(ref))
    resolved = catalog.resolve(str(ref))
    clouds = sorted(resolved.targets)
    unusable = {
        name: reason
        for name, target in resolved.targets.items()
        if (reason := unavailable_reason(target.cloud.driver)) is not None
    }
    usable = [c for c in clouds if c not in unusable]
    chosen = cloud if cloud in clouds else (usable or clouds or [""])[0]
    context: dict[str, Any] = {
        "version": version,
        "clouds": clouds,
        "chosen": chosen,
        "unusable": unusable,
        "target": resolved.targets.get(chosen),
        "can_deploy": Right.DEPLOY in rights and not actor(request).anonymous,
    }
    if request.headers.get("hx-target") == "deploy-preview":
        return page(request, "_deploy_preview.html", **context)
    return page(request, "_deploy.html", **context)


@router.get("/images/{name:path}/-/diff", response_class=HTMLResponse)
def diff_fragment(
    request: Request,
    name: str,
    old: Annotated[int, Query(alias="from", ge=1, le=1_000_000)],
    new: Annotated[int, Query(alias="to", ge=1, le=1_000_000)],
) -> Response:
    ref = module_ref(name, pinned=False)
    before, after, changes = _catalog(request).diff(f"{ref.name}@{old}", f"{ref.name}@{new}")
    rows = [
        {"path": c.path, "action": c.action, "old": _compact(c.old), "new": _compact(c.new)}
        for c in changes
    ]
    return page(request, "_diff.html", before=before, after=after, changes=rows)


@router.post("/images/{name:path}/-/copy")
async def copy_module(request: Request, name: str) -> Response:
    _, form = await require_form_csrf(request)
    destination = form.get("destination", "").strip()
    try:
        ModuleRef.parse(destination)
    except ValueError as exc:
        raise InputError(str(exc), field="destination") from None
    copied = await blocking(_catalog(request).copy, str(module_ref(name)), destination)
    return RedirectResponse(f"/images/{copied.name}", status_code=303)


@router.get("/images/{name:path}", response_class=HTMLResponse)
def image_page(request: Request, name: str) -> Response:
    ref = module_ref(name)
    catalog = _catalog(request)
    version = catalog.show(str(ref))
    if version.kind not in (Kind.IMAGE, Kind.COMPONENT):
        raise InputError(f"{version.label} is a {version.kind}, not an image or component")
    resolved = catalog.resolve(str(ref))
    history = catalog.history(version.name)
    return page(
        request,
        "image.html",
        version=version,
        resolved=resolved,
        hierarchy=_hierarchy(resolved, version.label),
        history=list(reversed(history)),
        rights=catalog.rights_on(str(ref)),
        suggested_copy=f"{actor(request).user}/{version.name.rsplit('/', 1)[-1]}",
    )


@router.post("/runs")
async def create_run(request: Request) -> Response:
    """Confirm of the Deploy dialog: deploy, then show the run's page."""
    who, form = await require_form_csrf(request)
    runs = run_service(request, who.user)
    if runs is None:
        return not_available()
    request_ = DeployRequest(form.get("module", ""), form.get("cloud", ""))
    run, _ = await blocking(runs.deploy, request_)
    target = f"/runs/{run.id}"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _runs(request: Request) -> RunService:
    who = actor(request)
    if who.anonymous:
        raise NotAuthenticated("log in to see runs")
    runs = run_service(request, who.user)
    if runs is None:
        raise Unsupported(DEPLOY_UNAVAILABLE, cloud="this server")
    return runs


RUNS_PER_PAGE = 50


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    part: Text = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """The runs dashboard, 50 runs a page; ``?part=table`` is the
    live-refreshed table alone."""
    found = _runs(request).list(limit=RUNS_PER_PAGE + 1, offset=(page_no - 1) * RUNS_PER_PAGE)
    template = "_runs_table.html" if part == "table" else "runs.html"
    return page(
        request,
        template,
        runs=found[:RUNS_PER_PAGE],
        page_no=page_no,
        older=len(found) > RUNS_PER_PAGE,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: RunId, part: Text = "") -> Response:
    runs = _runs(request)
    run = runs.get(run_id)
    links = {k: v for k, v in sorted(run.parameters.items()) if k.startswith("url.")}
    params = {
        k: v
        for k, v in sorted(run.parameters.items())
        if not k.startswith("url.") and k not in ("console.tail", "recipes.output")
    }
    template = "_run_live.html" if part == "live" else "run.html"
    return page(
        request,
        template,
        run=run,
        events=runs.events(run_id),
        links=links,
        params=params,
        final=run.state in TERMINAL,
    )


@router.post("/runs/{run_id}/terminate")
async def terminate_run(request: Request, run_id: RunId) -> Response:
    await require_form_csrf(request)
    await blocking(_runs(request).terminate, run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _market(request: Request) -> MarketplaceService:
    return _market_of(request, actor(request).user)


@router.get("/marketplace", response_class=HTMLResponse)
def marketplace_page(
    request: Request, text: Text = "", os: Text = "", arch: Text = "", vo: Text = ""
) -> Response:
    market = _market(request)
    query = ApplianceQuery(None, text or None, os or None, arch or None, vo or None, 100)
    found, total = market.appliances(query)
    filters = {"text": text, "os": os, "arch": arch, "vo": vo}
    store = services(request).images
    stored = [i.name for i in store.list()] if store is not None else []
    return page(
        request,
        "marketplace.html",
        appliances=found,
        total=total,
        filters=filters,
        vos=market.vos(),
        stored=stored,
    )


@router.get("/marketplace/{name:path}", response_class=HTMLResponse)
def appliance_page(request: Request, name: Annotated[str, Path(max_length=400)]) -> Response:
    return page(request, "appliance.html", view=_market(request).appliance(name))


@router.get("/vos/{vo}", response_class=HTMLResponse)
def vo_page(request: Request, vo: Annotated[str, Path(max_length=200)]) -> Response:
    market = _market(request)
    view = market.vo(vo)
    endorsable: list[str] = []
    if view.role is VoRole.MANAGER:
        public, _ = market.appliances(ApplianceQuery(None, limit=200))
        endorsable = [
            f"{a.name}@{v.version}"
            for a in public
            if a.is_public
            for v in market.appliance(a.name).versions
        ]
    return page(request, "vo.html", view=view, endorsable=endorsable)


VoPath = Annotated[str, Path(max_length=200)]


@router.post("/vos/{vo}/draft")
async def endorse_form(request: Request, vo: VoPath) -> Response:
    """A manager's form: endorse ``APPLIANCE@VERSION``, or withdraw ``withdraw``."""
    who, form = await require_form_csrf(request)
    market = _market_of(request, who.user)
    if withdrawn := form.get("withdraw", "").strip():
        await blocking(market.withdraw, vo, withdrawn)
    else:
        await blocking(market.endorse, vo, form.get("appliance", "").strip())
    return RedirectResponse(f"/vos/{vo}", status_code=303)


@router.post("/vos/{vo}/publish")
async def publish_form(request: Request, vo: VoPath) -> Response:
    who, form = await require_form_csrf(request)
    days = form.get("days", "").strip() or str(DEFAULT_LIST_DAYS)
    if not days.isdigit() or len(days) > 5:
        raise InputError("days must be a whole number", field="days")
    market = _market_of(request, who.user)
    await blocking(market.publish, vo, days=int(days), comment=form.get("comment", "").strip())
    return RedirectResponse(f"/vos/{vo}", status_code=303)


@router.post("/vos/{vo}/obsolete")
async def obsolete_form(request: Request, vo: VoPath) -> Response:
    who, _ = await require_form_csrf(request)
    await blocking(_market_of(request, who.user).obsolete, vo)
    return RedirectResponse(f"/vos/{vo}", status_code=303)


@router.post("/marketplace")
async def register_form(request: Request) -> Response:
    """An author's form: a new version of an appliance from a stored image."""
    who, form = await require_form_csrf(request)
    name = form.get("name", "").strip()
    title = form.get("title", "").strip()
    market = _market_of(request, who.user)
    await blocking(
        market.register,
        name,
        form.get("version", "").strip(),
        [FileSource(stored=form.get("image", "").strip())],
        appliance=NewAppliance(title=title) if title else None,
        notes=form.get("notes", ""),
    )
    if form.get("public") == "yes":
        await blocking(market.share, name, public_rights=frozenset({Right.VIEW}))
    return RedirectResponse(f"/marketplace/{name}", status_code=303)


def _market_of(request: Request, user: str) -> MarketplaceService:
    factory = services(request).market
    if factory is None:
        raise NotFound("this server has no marketplace")
    return factory(user)


@router.get("/clouds", response_class=HTMLResponse)
def clouds_page(request: Request) -> Response:
    return page(
        request,
        "clouds.html",
        clouds=_catalog(request).clouds(),
        details=services(request).cloud_details,
    )


def _error_page(request: Request, status: int, detail: str, hint: str | None) -> Response:
    if status == 401 and request.method == "GET":
        return RedirectResponse(login_url(request), status_code=303)
    return page(request, "error.html", status=status, code=status, detail=detail, hint=hint)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=FilePath(__file__).parent / "static"), name="static")
    app.include_router(session.router)
    app.include_router(router)
    app.include_router(sync_pages.router)
    app.state.html_errors = _error_page
