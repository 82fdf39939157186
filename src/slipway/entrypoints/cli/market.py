"""``slipway appliance …`` and ``slipway vo …``: the marketplace and the
VO-wide image lists (docs/marketplace.md).

Exit status as everywhere: 2 bad input, 3 not found (or not yours to see),
4 not allowed, 5 a conflict with the current state (a version that exists,
an image that fails its checks, a VO with no endorser configured).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.domain.marketplace import ApplianceQuery, VoRole
from slipway.entrypoints.cli.catalog import emit_rights, parse_share
from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    err_console,
    escape,
)
from slipway.entrypoints.market_json import (
    appliance_dict,
    appliance_view_dict,
    publication_dict,
    version_dict,
    vo_view_dict,
)
from slipway.errors import Conflict, InputError
from slipway.services.marketplace import (
    DEFAULT_LIST_DAYS,
    FileSource,
    MarketplaceService,
    NewAppliance,
    PushRequest,
)

__all__ = ["appliance_app", "vo_app"]

appliance_app = typer.Typer(
    help="The marketplace: appliances, their versions and image files.", no_args_is_help=True
)
vo_app = typer.Typer(help="VOs and their signed, VO-wide image lists.", no_args_is_help=True)


def _market(ctx: typer.Context, *, boot_test: bool = False) -> MarketplaceService:
    from slipway.bootstrap import marketplace_service

    if not boot_test:
        return marketplace_service(settings(ctx))

    def test_now(name: str) -> dict[str, Any]:
        from slipway.entrypoints.cli.image import Accelerator
        from slipway.entrypoints.cli.image_test import run_boot_test, test_outcome

        err_console.print(f"boot-testing {escape(name)} before it is registered")
        report = run_boot_test(
            ctx, name, timeout=900.0, login_user="slipway", accelerator=Accelerator.AUTO
        )
        return test_outcome(report)

    return marketplace_service(settings(ctx), boot_test=test_now)


# -- appliances ------------------------------------------------------------------


@appliance_app.command("register")
def register_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="NAMESPACE/NAME, e.g. alice/debian-12.")],
    version: Annotated[str, typer.Option("--version", help="The new version, e.g. 2026.11.29.")],
    image: Annotated[
        list[str] | None,
        typer.Option(help="A local image store entry as a file of the version (repeatable)."),
    ] = None,
    url: Annotated[list[str] | None, typer.Option(help="An image file's URL (repeatable).")] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="The URL's format (qcow2, ova, raw …).")
    ] = None,
    sha512: Annotated[
        str | None, typer.Option(help="The URL's SHA-512; with --size, nothing is downloaded.")
    ] = None,
    size: Annotated[int | None, typer.Option(help="The URL's size in bytes.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of a new appliance.")] = None,
    description: Annotated[str, typer.Option(help="Description of a new appliance.")] = "",
    os_family: Annotated[str, typer.Option("--os", help="OS family (sl:os).")] = "Linux",
    arch: Annotated[str, typer.Option(help="Architecture.")] = "x86_64",
    os_name: Annotated[str | None, typer.Option(help="OS name (sl:osname), e.g. Debian.")] = None,
    os_version: Annotated[str | None, typer.Option(help="OS version, e.g. 12.")] = None,
    min_cores: Annotated[int | None, typer.Option(help="Minimum cores.")] = None,
    recommended_cores: Annotated[int | None, typer.Option(help="Recommended cores.")] = None,
    min_ram: Annotated[int | None, typer.Option(help="Minimum RAM in MiB.")] = None,
    recommended_ram: Annotated[int | None, typer.Option(help="Recommended RAM in MiB.")] = None,
    notes: Annotated[str, typer.Option(help="What is new in this version.")] = "",
    expires: Annotated[
        datetime | None, typer.Option(help="When this version stops being endorsable (UTC).")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Register a new version of an appliance (creating the appliance, with
    --title, the first time). A stored image must pass `image check` and —
    where this host boots images — `image test`, which runs now when it has
    not yet; a URL is downloaded once to compute its SHA-512, unless both
    --sha512 and --size are given (then they are marked unverified)."""
    sources = [FileSource(stored=s) for s in image or []]
    urls = url or []
    if (sha512 is not None or size is not None or file_format is not None) and len(urls) != 1:
        raise InputError("--format, --sha512 and --size describe exactly one --url")
    sources += [FileSource(url=u, format=file_format, sha512=sha512, size=size) for u in urls]
    details: dict[str, int | str] = {
        key: value
        for key, value in (
            ("arch", arch),
            ("os_name", os_name),
            ("os_version", os_version),
            ("core_minimum", min_cores),
            ("core_recommended", recommended_cores),
            ("ram_minimum", min_ram),
            ("ram_recommended", recommended_ram),
        )
        if value is not None
    }
    new = None
    if title is not None:
        new = NewAppliance(title=title, description=description, os=os_family, arch=arch)
    market = _market(ctx, boot_test=True)
    created = market.register(
        name,
        version,
        sources,
        appliance=new,
        notes=notes,
        expires=expires.replace(tzinfo=UTC) if expires and not expires.tzinfo else expires,
        details=details,
    )
    urls_of = {f.sha512: market.file_url(f) for f in created.files}
    emit(
        version_dict(created, urls_of),
        output,
        lambda _: console.print(
            escape(f"registered {created.label} with {len(created.files)} file(s)")
        ),
    )


@appliance_app.command("list")
def list_cmd(
    ctx: typer.Context,
    text: Annotated[
        str | None, typer.Option(help="Words in the name, title or description.")
    ] = None,
    os_family: Annotated[str | None, typer.Option("--os", help="OS family.")] = None,
    arch: Annotated[str | None, typer.Option(help="Architecture.")] = None,
    vo: Annotated[str | None, typer.Option(help="Endorsed in this VO's published list.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0, max=10_000_000)] = 0,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """The appliances you can see."""
    query = ApplianceQuery(None, text, os_family, arch, vo, limit, offset)
    found, total = _market(ctx).appliances(query)
    data = {"total": total, "appliances": [appliance_dict(a) for a in found]}

    def render(_: Any) -> None:
        table = DataTable("appliance", "title", "os", "arch", "owner", "public")
        for a in found:
            public = ",".join(sorted(a.rights.public_rights)) or "-"
            table.add_row(a.name, a.title, a.os, a.arch, a.rights.owner, public)
        console.print(table)
        console.print(f"{len(found)} of {total}")

    emit(data, output, render)


@appliance_app.command("show")
def show_cmd(ctx: typer.Context, name: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """An appliance: its versions, files, checksums, checks, and the VO lists
    that endorse each version."""
    view = _market(ctx).appliance(name)
    data = appliance_view_dict(view)

    def render(_: Any) -> None:
        a = view.appliance
        console.print(escape(f"{a.name} — {a.title} ({a.os}, {a.arch}), owner {a.rights.owner}"))
        if a.description:
            console.print(escape(a.description))
        endorsed: dict[str, list[str]] = {}
        for vo, version, number in view.endorsements:
            endorsed.setdefault(version, []).append(f"{vo} (list {number})")
        table = DataTable("version", "file", "size", "sha512", "checks", "endorsed by")
        for v in view.versions:
            checks = "; ".join(f"{k}: {o}" for k, o in v.checks)
            for f in v.files:
                table.add_row(
                    v.version,
                    view.file_urls[f.sha512],
                    f"{f.size}" + ("" if f.verified else " (unverified)"),
                    f.sha512[:16] + "…",
                    checks,
                    ", ".join(endorsed.get(v.version, [])) or "-",
                )
        console.print(table)

    emit(data, output, render)


@appliance_app.command("share")
def share_cmd(
    ctx: typer.Context,
    name: str,
    group: Annotated[str | None, typer.Option(help="Group to grant rights to.")] = None,
    group_rights: Annotated[str, typer.Option(help="view,edit for the group.")] = "view",
    public: Annotated[str, typer.Option(help="view for everyone, or none.")] = "none",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Set who else may view or edit an appliance you own."""
    granted_group, granted_public = parse_share(group_rights, public)
    shared = _market(ctx).share(
        name, group=group, group_rights=granted_group, public_rights=granted_public
    )
    emit_rights(name, shared.rights, output)


# -- VOs --------------------------------------------------------------------------


@vo_app.command("create")
def vo_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="DNS-like, e.g. vo.example.org.")],
    manager: Annotated[str, typer.Option(help="Its first manager.")],
    title: Annotated[str, typer.Option(help="The list's dc:title.")] = "",
    description: Annotated[str, typer.Option(help="The list's dc:description.")] = "",
) -> None:
    """Create a VO (admins only)."""
    vo = _market(ctx).create_vo(name, manager, title=title, description=description)
    console.print(escape(f"created VO {vo.name}, managed by {manager}"))


@vo_app.command("list")
def vo_list(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every VO."""
    vos = _market(ctx).vos()
    data = [
        {"name": v.name, "title": v.title, "obsoleted": v.obsoleted_at is not None} for v in vos
    ]

    def render(_: Any) -> None:
        table = DataTable("VO", "title", "list")
        for v in vos:
            table.add_row(v.name, v.title, "obsoleted" if v.obsoleted_at else "")
        console.print(table)

    emit(data, output, render)


@vo_app.command("show")
def vo_show(ctx: typer.Context, vo: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """A VO: its members and draft (for members) and its published versions."""
    view = _market(ctx).vo(vo)
    data = vo_view_dict(view)

    def render(_: Any) -> None:
        console.print(escape(f"{view.vo.name} — {view.vo.title}"))
        if view.members is not None:
            console.print(
                escape("members: " + ", ".join(f"{u} ({r.value})" for u, r in view.members))
            )
        if view.draft is not None:
            table = DataTable("draft: appliance", "version", "added by", "at")
            for e in view.draft:
                table.add_row(e.appliance, e.version, e.added_by, f"{e.added_at:%Y-%m-%d %H:%M}")
            console.print(table)
        _render_history(view.publications)

    emit(data, output, render)


@vo_app.command("member")
def vo_member(
    ctx: typer.Context,
    vo: str,
    user: str,
    manager: Annotated[bool, typer.Option("--manager", help="Make a manager.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove from the VO.")] = False,
) -> None:
    """Add a member, make one a manager, or remove one (managers only)."""
    if manager and remove:
        raise InputError("--manager and --remove exclude each other")
    role = None if remove else VoRole.MANAGER if manager else VoRole.MEMBER
    _market(ctx).set_member(vo, user, role)
    console.print(escape(f"{user}: {'removed from' if role is None else role.value + ' of'} {vo}"))


@vo_app.command("endorse")
def vo_endorse(
    ctx: typer.Context,
    vo: str,
    appliance: Annotated[str, typer.Argument(help="APPLIANCE@VERSION.")],
) -> None:
    """Put an appliance version in the VO's draft, in place of its other version."""
    entry = _market(ctx).endorse(vo, appliance)
    console.print(escape(f"{entry.appliance}@{entry.version} is in the draft of {vo}"))


@vo_app.command("withdraw")
def vo_withdraw(ctx: typer.Context, vo: str, appliance: str) -> None:
    """Take an appliance out of the VO's draft; the next publish obsoletes it."""
    _market(ctx).withdraw(vo, appliance)
    console.print(escape(f"{appliance} is no longer in the draft of {vo}"))


@vo_app.command("publish")
def vo_publish(
    ctx: typer.Context,
    vo: str,
    days: Annotated[int, typer.Option(help="Days until the list expires.")] = DEFAULT_LIST_DAYS,
    comment: Annotated[str, typer.Option(help="Why, for the history.")] = "",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Sign the draft with the VO's endorser key as its next list version."""
    publication = _market(ctx).publish(vo, days=days, comment=comment)
    emit(
        publication_dict(publication),
        output,
        lambda _: console.print(
            escape(
                f"published version {publication.number} of the {vo} list "
                f"({len(publication.entries)} appliances), "
                f"expires {publication.expires:%Y-%m-%d %H:%M} UTC"
            )
        ),
    )


@vo_app.command("obsolete")
def vo_obsolete(ctx: typer.Context, vo: str) -> None:
    """Stop serving the VO's list, until it publishes again."""
    _market(ctx).obsolete(vo)
    console.print(escape(f"the list of {vo} is obsolete"))


@vo_app.command("history")
def vo_history(ctx: typer.Context, vo: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every published version of the VO's list, newest first, with its author."""
    publications = _market(ctx).vo(vo).publications
    emit(
        [publication_dict(p) for p in publications],
        output,
        lambda _: _render_history(publications),
    )


def _render_history(publications: Any) -> None:
    table = DataTable("list version", "published", "by", "appliances", "expires", "comment")
    for p in publications:
        table.add_row(
            str(p.number),
            f"{p.published_at:%Y-%m-%d %H:%M}",
            p.author,
            str(len(p.entries)),
            f"{p.expires:%Y-%m-%d}",
            p.comment,
        )
    console.print(table)


@vo_app.command("export")
def vo_export(
    ctx: typer.Context,
    vo: str,
    version: Annotated[int | None, typer.Option("--version", min=1, help="A list version.")] = None,
    json_only: Annotated[
        bool, typer.Option("--json", help="The JSON the signature covers, not the signed bytes.")
    ] = False,
) -> None:
    """Print a published list (the newest by default) on stdout: the signed
    S/MIME bytes exactly as served at /vo/VO/image.list."""
    publication = _market(ctx).published(vo, version)
    sys.stdout.buffer.write(publication.document if json_only else publication.signed)
    sys.stdout.buffer.flush()


# -- OCI artifacts -------------------------------------------------------------------


def _registry_password(username: str | None, password_stdin: bool) -> str | None:
    """The registry password, read from stdin (never an argument)."""
    if username is None:
        if password_stdin:
            raise InputError("--password-stdin goes with --username")
        return None
    if not password_stdin:
        raise InputError("give the password on stdin with --password-stdin")
    return sys.stdin.readline().rstrip("\n")


def _registry_login(username: str | None, password_stdin: bool) -> Any:
    from slipway.adapters.oci import RegistryCredentials

    password = _registry_password(username, password_stdin)
    return None if username is None else RegistryCredentials(username, password or "")


def _transfer_bar() -> tuple[Any, Any]:
    """A progress bar on stderr, and the callback that moves it."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[tuple[str, str], Any] = {}

    def moved(transfer: Any) -> None:
        key = (str(transfer.step), transfer.name)
        if key not in tasks:
            tasks[key] = progress.add_task(f"{transfer.step} {transfer.name}", total=None)
        progress.update(tasks[key], completed=transfer.done, total=transfer.total or None)

    return progress, moved


UsernameOption = Annotated[str | None, typer.Option(help="The registry user, if it needs one.")]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the registry password from stdin.")
]


@appliance_app.command("push")
def push_cmd(
    ctx: typer.Context,
    appliance: Annotated[str, typer.Argument(help="APPLIANCE@VERSION.")],
    target: Annotated[str, typer.Argument(help="oci://HOST[:PORT]/REPOSITORY[:TAG].")],
    file_sha512: Annotated[
        str | None, typer.Option("--file", help="Which file, by its SHA-512's start.")
    ] = None,
    admin_user: Annotated[
        str | None, typer.Option(help="The image's login user (os_admin_user).")
    ] = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Push a version's image file as an OCI artifact (application/x-qemu-disk,
    with EGI's annotations) and note it: lists published from now on name the
    artifact by its manifest digest, so the VO's signature covers it too."""
    password = _registry_password(username, password_stdin)
    request = PushRequest(target, username, password, admin_user, file_sha512)
    progress, moved = _transfer_bar()
    with progress:
        pushed = _market(ctx).push(appliance, request, progress=moved)
    emit(
        {"appliance": appliance, **asdict(pushed)},
        output,
        lambda _: console.print(escape(f"pushed {appliance} as {pushed.reference}")),
    )


@appliance_app.command("pull")
def pull_cmd(
    source: Annotated[str, typer.Argument(help="oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:…].")],
    to: Annotated[Path, typer.Option("--to", help="The folder to write the image into.")],
    sha512: Annotated[
        str | None, typer.Option(help="The SHA-512 the image must have (from a signed list).")
    ] = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Pull an image artifact into a folder, checking the manifest's and every
    blob's digest and size while the bytes arrive; nothing is left behind when
    a check fails. With --sha512, the image must also have that SHA-512."""
    from slipway.adapters.oci import pull_disk_image
    from slipway.imagekit.store import sha512_of

    credentials = _registry_login(username, password_stdin)
    progress, moved = _transfer_bar()
    with progress:
        pulled = pull_disk_image(source, to, progress=moved, credentials=credentials)
    files: list[dict[str, Any]] = []
    for pulled_file in pulled.files:
        digest = sha512_of(pulled_file.path)
        if sha512 is not None and digest != sha512.lower():
            for other in pulled.files:
                other.path.unlink(missing_ok=True)
            raise Conflict(
                f"{pulled_file.path.name}: its SHA-512 is {digest[:16]}…, "
                f"not the {sha512[:16]}… expected; nothing was kept"
            )
        files.append({"path": str(pulled_file.path), "sha512": digest, "size": pulled_file.size})
    data = {
        "reference": str(pulled.reference),
        "manifest_digest": pulled.manifest_digest,
        "files": files,
        "annotations": dict(pulled.files[0].annotations) if pulled.files else {},
    }

    def render(_: Any) -> None:
        for f in files:
            console.print(escape(f"{f['path']}  sha512 {f['sha512'][:16]}…  {f['size']} bytes"))

    emit(data, output, render)
