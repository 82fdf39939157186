"""``/api/modules``: list and search, import a definition, show, versions,
resolve, diff, copy and share — each a call to the catalog service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from slipway.adapters.definitions.yaml_source import MAX_DEFINITION_BYTES
from slipway.domain.modules import Kind, ModuleRef
from slipway.entrypoints.api.deps import Catalog, LoggedIn
from slipway.entrypoints.api.schemas import (
    NO_NUL,
    CopyIn,
    DiffOut,
    ModuleItem,
    ModulePage,
    ResolvedOut,
    RightsIn,
    RightsOut,
    VersionOut,
)
from slipway.entrypoints.api.threads import costly
from slipway.errors import InputError
from slipway.services.catalog import CatalogService

__all__ = ["router"]

router = APIRouter(prefix="/api/modules", tags=["modules"])

MAX_OFFSET = 1_000_000
Name = Annotated[str, "a module name, with @N to pin a version where allowed"]
Filter = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


def module_ref(text: str, *, pinned: bool = True) -> ModuleRef:
    """``text`` as a reference; a bad one is a 422 naming the path parameter."""
    try:
        ref = ModuleRef.parse(text)
    except ValueError as exc:
        raise InputError(str(exc), field="path.name") from None
    if ref.version is not None and not pinned:
        raise InputError(f"{text!r}: name the module without @version here", field="path.name")
    return ref


@router.get("", summary="List and search modules")
def list_modules(
    catalog: Catalog,
    kind: Annotated[list[Kind] | None, Query(description="default: image and component")] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="in name or description")
    ] = None,
    os: Filter = None,
    cloud: Filter = None,
    owner: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ModulePage:
    page = catalog.search(
        kinds=kind or (Kind.IMAGE, Kind.COMPONENT),
        text=q,
        os=os,
        cloud=cloud,
        owner=owner,
        limit=limit,
        offset=offset,
    )
    return ModulePage(
        items=[ModuleItem.of(row) for row in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "",
    status_code=201,
    summary="Import a definition document (YAML) as a new version",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def import_module(
    request: Request,
    catalog: Catalog,
    _who: LoggedIn,
    name: Annotated[str, Query(min_length=1, max_length=400, description="module name")],
    comment: Annotated[str, Query(max_length=2000, pattern=NO_NUL)] = "",
    dry_run: Annotated[bool, Query(description="validate only; write nothing")] = False,
) -> dict[str, Any]:
    ref = module_ref(name, pinned=False)
    body = await request.body()
    if len(body) > MAX_DEFINITION_BYTES:
        raise InputError(f"a definition is at most {MAX_DEFINITION_BYTES} bytes", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the definition is not UTF-8 text", field="body") from None
    return await costly(request, _import, catalog, ref, text, comment, dry_run=dry_run)


def _import(
    catalog: CatalogService, ref: ModuleRef, text: str, comment: str, *, dry_run: bool
) -> dict[str, Any]:
    """Parse, check and (unless ``dry_run``) save one document, in a thread."""
    from slipway.adapters.definitions.loader import load_text

    loaded = load_text(text, f"{ref.name}.yaml", ref.name)
    if dry_run:
        report = catalog.validate([loaded])
        report.raise_errors()
        return {"name": ref.name, "saved": None, "warnings": report.warnings}
    result = catalog.import_files([loaded], comment)
    saved = result.saved[0]
    return {
        "name": saved.name,
        "saved": {"kind": saved.kind.value, "version": saved.version, "status": saved.status},
        "warnings": result.warnings,
    }


@router.get("/{name:path}/-/versions", summary="Every version of a module")
def history(name: str, catalog: Catalog) -> list[VersionOut]:
    ref = module_ref(name, pinned=False)
    return [VersionOut.of(v, document=False) for v in catalog.history(ref.name)]


@router.get("/{name:path}/-/resolved", summary="The effective definition on each cloud")
def resolved(
    name: str,
    catalog: Catalog,
    cloud: Annotated[list[str] | None, Query(description="default: every native cloud")] = None,
) -> ResolvedOut:
    ref = module_ref(name)
    return ResolvedOut.of(catalog.resolve(str(ref), clouds=cloud or None))


@router.get("/{name:path}/-/diff", summary="What changed between two versions")
def diff(
    name: str,
    catalog: Catalog,
    old: Annotated[int | None, Query(alias="from", ge=1, le=MAX_OFFSET)] = None,
    new: Annotated[int | None, Query(alias="to", ge=1, le=MAX_OFFSET)] = None,
) -> DiffOut:
    """Defaults: from the version before ``to``, to the latest."""
    ref = module_ref(name, pinned=False)
    latest = catalog.show(ref.name).version
    to = new or latest
    start = old or max(to - 1, 1)
    return DiffOut.of(*catalog.diff(f"{ref.name}@{start}", f"{ref.name}@{to}"))


@router.post("/{name:path}/-/copy", status_code=201, summary="Copy into your own namespace")
def copy(name: str, body: CopyIn, catalog: Catalog, _who: LoggedIn) -> VersionOut:
    ref = module_ref(name)
    try:
        ModuleRef.parse(body.destination)
    except ValueError as exc:
        raise InputError(str(exc), field="body.destination") from None
    return VersionOut.of(catalog.copy(str(ref), body.destination))


@router.put("/{name:path}/-/rights", summary="Share: who else may view, edit or deploy")
def share(name: str, body: RightsIn, catalog: Catalog, _who: LoggedIn) -> RightsOut:
    ref = module_ref(name, pinned=False)
    if body.group is None and body.group_rights:
        raise InputError("group rights need a group", field="body.group")
    rights = catalog.share(
        ref.name,
        group=body.group or None,
        group_rights=frozenset(body.group_rights),
        public_rights=frozenset(body.public_rights),
    )
    return RightsOut(
        owner=rights.owner,
        group=rights.group,
        group_rights=sorted(rights.group_rights),
        public_rights=sorted(rights.public_rights),
    )


@router.get("/{name:path}", summary="A module as saved (name@N for a version)")
def show(name: str, catalog: Catalog) -> VersionOut:
    return VersionOut.of(catalog.show(str(module_ref(name))))
