"""``slipway imagelist verify``: is this HEPiX image list one to use?

Exit status: 0 when the list is accepted, 1 when it is rejected (the reason's
code and a one-line explanation, every problem found after it), 2 when the
arguments are unusable (no such file, URL not fetched, no CA directory, a DN
that is not one). Reason codes: docs/formats.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    err_console,
    escape,
    warn,
)
from slipway.entrypoints.market_json import accepted_list_dict
from slipway.errors import ImageListRejected

__all__ = ["imagelist_app"]

imagelist_app = typer.Typer(
    help="HEPiX image lists (AppDB's VO-wide lists): verify them.", no_args_is_help=True
)


@imagelist_app.command("verify")
def verify(
    source: Annotated[
        str, typer.Argument(help="The list: a file, or an http(s):// URL.", show_default=False)
    ],
    ca_dir: Annotated[
        Path,
        typer.Option(
            "--ca-dir",
            help="Trusted CAs, OpenSSL hashed names (9da13359.0) and CRLs (*.r0), "
            "like /etc/grid-security/certificates.",
            show_default=False,
        ),
    ],
    endorser_dn: Annotated[
        str,
        typer.Option(
            "--endorser-dn",
            help="The trusted endorser's subject, /DC=org/CN=x (as hv:dn) or RFC 4514.",
            show_default=False,
        ),
    ],
    endorser_ca: Annotated[
        str | None,
        typer.Option(
            "--endorser-ca",
            help="The trusted endorser's issuer (as hv:ca). Without it, any CA of"
            " --ca-dir may vouch for the endorser's name.",
        ),
    ] = None,
    legacy: Annotated[
        bool,
        typer.Option(
            "--legacy",
            help="Also accept lists signed with sha1.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds a URL may take to arrive.", min=1)
    ] = 30.0,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Verify a signed image list: its signature over the exact content, the chain
    to a CA of --ca-dir, the signer against hv:dn/hv:ca and the trusted endorser,
    and its expiry. Expired images are dropped and reported.

    Exit status: 0 accepted, 1 rejected (reason code and explanation), 2 bad input.
    """
    from slipway.adapters.imagelists import (
        MAX_MESSAGE_BYTES,
        TrustPolicy,
        load_ca_dir,
        parse_endorser_name,
        read_list_source,
        verify_image_list,
    )

    policy = TrustPolicy(
        anchors=load_ca_dir(ca_dir),
        endorser_dn=parse_endorser_name(endorser_dn, field="--endorser-dn"),
        endorser_ca=(
            parse_endorser_name(endorser_ca, field="--endorser-ca") if endorser_ca else None
        ),
        legacy=legacy,
    )
    if endorser_ca is None:
        warn(["no --endorser-ca: any CA of --ca-dir may vouch for the endorser's name"])
    try:
        message = read_list_source(source, max_bytes=MAX_MESSAGE_BYTES, timeout=timeout)
        verified = verify_image_list(message, policy, now=datetime.now(UTC))
    except ImageListRejected as exc:
        _report_rejection(source, exc, output)
        raise typer.Exit(1) from None
    data = accepted_list_dict(verified, source)
    emit(data, output, _render_accepted)


def _report_rejection(source: str, exc: ImageListRejected, output: OutputFormat) -> None:
    problems = [{"reason": reason, "detail": detail} for reason, detail in exc.problems]
    data = {"accepted": False, "source": source, "reason": exc.reason, "problems": problems}
    if exc.field:
        data["field"] = exc.field
    if output is OutputFormat.JSON:
        emit(data, output, lambda _: None)
    headline = f"[bold red]rejected ({exc.reason}):[/] {escape(exc.message)}"
    err_console.print(headline, soft_wrap=True)
    for item in problems[1:]:
        err_console.print(
            f"[dim]also ({item['reason']}):[/] {escape(item['detail'])}", soft_wrap=True
        )


def _render_accepted(data: dict[str, Any]) -> None:
    console.print(
        f"[green]accepted:[/] {escape(data['title'] or data['identifier'])} "
        f"(identifier {escape(data['identifier'])}, version {escape(data['version'])}, "
        f"expires {data['expires']:%Y-%m-%d})"
    )
    console.print(f"signed by {escape(data['signer'])} (issuer {escape(data['issuer'])})")
    table = DataTable("image", "version", "format", "size (bytes)", "OS", "arch", box=None)
    for image in data["images"]:
        os_text = " ".join(filter(None, (image["os_name"], image["os_version"])))
        table.add_row(
            image["title"] or image["identifier"],
            image["version"],
            image["format"] or "",
            str(image["size"]),
            os_text,
            image["arch"] or "",
        )
    console.print(table)
    for image in data["dropped"]:
        err_console.print(
            f"[yellow]dropped (expired {image['expires']:%Y-%m-%d}):[/] "
            f"{escape(image['title'] or image['identifier'])}",
            soft_wrap=True,
        )
