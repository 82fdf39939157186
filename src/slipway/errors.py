"""Every error Slipway raises on purpose.

    SlipwayError                      base; ``exit_code`` and an optional ``hint``
    ├── InputError                    bad input from the user (exit 2)
    │   ├── DefinitionError           a definition file is wrong: names file, line and key
    │   │   └── DefinitionErrors      several of them, reported together
    │   ├── SizeError                 a size no flavor fits, an unknown instance type
    │   └── ImageFileError            an image file that cannot be read (image kit)
    ├── NotFound                      a module, version, cloud, run … that does not exist (exit 3)
    │   └── Gone                      it existed and was withdrawn (an obsoleted VO list)
    ├── PermissionDenied              the acting user lacks a right; names it (exit 4)
    │   ├── NotAuthenticated          nobody is logged in, or the credentials are wrong
    │   ├── TooManyAttempts           log-ins refused for a while after too many tries;
    │   │                             ``retry_after`` says how many seconds
    │   └── RefusedReference          a definition names a module its importer may not view:
    │                                 names file, line and key, as a DefinitionError does
    ├── Conflict                      the action clashes with the current state (exit 5)
    ├── CloudError                    a cloud said no; carries the cloud's own message (exit 6)
    │   ├── Unsupported               the cloud's connector cannot do this at all
    │   └── RegistryError             an OCI registry said no or could not be reached; carries
    │       │                         the registry's own message
    │       └── ArtifactRejected      what a registry served fails a check: ``reason`` is a
    │                                 stable code (``digest-mismatch`` …) (exit 1)
    ├── ToolError                     an external tool (qemu-img, mmdebstrap …) failed (exit 7)
    ├── ImageListRejected             an image list is not to be used: ``reason`` is a stable
    │                                 code (``digest-mismatch`` …), ``problems`` all found (exit 1)
    └── StillRunning                  a command stopped waiting for a run that goes on (exit 8)

Third-party errors are translated at the edge (``raise … from exc``). Exit codes
are mapped in the CLI in one place; HTTP statuses likewise in the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ArtifactRejected",
    "CloudError",
    "Conflict",
    "DefinitionError",
    "DefinitionErrors",
    "Gone",
    "ImageFileError",
    "ImageListRejected",
    "InputError",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "RefusedReference",
    "RegistryError",
    "SizeError",
    "SlipwayError",
    "StillRunning",
    "TooManyAttempts",
    "ToolError",
    "Unsupported",
]


class SlipwayError(Exception):
    """Base of every error Slipway raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(SlipwayError):
    """Bad input; ``field`` names the request field at fault, when there is one."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


@dataclass(frozen=True)
class Location:
    """Where in a definition file something is: file path, 1-based line, key path."""

    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        text = self.file
        if self.line is not None:
            text += f":{self.line}"
        if self.key:
            text += f": {self.key}"
        return text


class DefinitionError(InputError):
    """A definition is wrong; ``str()`` reads ``file:line: key: what is wrong``."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.location = Location(file, line, key)
        self.problem = message
        super().__init__(f"{self.location}: {message}", hint=hint)


class DefinitionErrors(DefinitionError):
    """Several definition errors found in one pass, reported together."""

    def __init__(self, errors: Sequence[DefinitionError]) -> None:
        if not errors:
            raise ValueError("DefinitionErrors needs at least one error")
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(
            first.problem,
            file=first.location.file,
            line=first.location.line,
            key=first.location.key,
        )
        self.message = "\n".join(str(e) for e in self.errors)

    @classmethod
    def raise_if_any(cls, errors: Iterable[DefinitionError]) -> None:
        collected = list(errors)
        if len(collected) == 1:
            raise collected[0]
        if collected:
            raise cls(collected)


class SizeError(InputError):
    pass


class ImageFileError(InputError):
    pass


class PropertiesDoNotFit(InputError):
    """An image's properties are more than the cloud keeps (EC2's tags,
    Exoscale's description); said before anything is stored."""


class NotFound(SlipwayError):
    exit_code = 3


class Gone(NotFound):
    """It was there and has been withdrawn on purpose (HTTP 410)."""


class PermissionDenied(SlipwayError):
    exit_code = 4


class NotAuthenticated(PermissionDenied):
    pass


class TooManyAttempts(PermissionDenied):
    """Log-ins to an account, or from a client address, wait: too many were
    tried lately (or a user's next download waits for their last one).
    ``retry_after``: whole seconds until the next may be tried."""

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class RefusedReference(PermissionDenied):
    """A reference (``parent``, ``image``, ``catalog``, a cloud, a security
    group) that names no module the importer may view. Whether that module
    does not exist or is not shared with them, the message is the same, so a
    refusal tells nobody what others keep. ``str()`` reads ``file:line: key:
    what is wrong``; ``errors`` holds every refusal of one import."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.location = Location(file, line, key)
        self.problem = message
        super().__init__(f"{self.location}: {message}", hint=hint)
        self.errors: list[RefusedReference] = [self]

    @classmethod
    def together(cls, refused: Sequence[RefusedReference]) -> RefusedReference:
        """One error reporting every refusal in ``refused`` (at least one)."""
        first = refused[0]
        if len(refused) == 1:
            return first
        combined = cls(
            first.problem,
            file=first.location.file,
            line=first.location.line,
            key=first.location.key,
            hint=first.hint,
        )
        combined.errors = list(refused)
        combined.message = "\n".join(str(e) for e in refused)
        return combined


class Conflict(SlipwayError):
    exit_code = 5


class CloudError(SlipwayError):
    exit_code = 6

    def __init__(self, message: str, *, cloud: str, hint: str | None = None) -> None:
        super().__init__(f"{cloud}: {message}", hint=hint)
        self.cloud = cloud


class Unsupported(CloudError):
    pass


class RegistryError(CloudError):
    """An OCI registry refused a request, answered what the protocol does not
    allow, or could not be reached in time. ``registry`` is its host (and
    port); the message carries the registry's own words when it sent some."""

    def __init__(self, message: str, *, registry: str, hint: str | None = None) -> None:
        super().__init__(message, cloud=registry, hint=hint)
        self.registry = registry


class ArtifactRejected(RegistryError):
    """What a registry served is not to be used: a manifest or blob whose
    digest or size is not the one expected, a manifest too large or not of
    the expected shape, a file name that could escape the target folder.

    ``reason`` is a stable code (docs/formats.md, "OCI artifacts"). Exit 1,
    as for a rejected image list: the transfer worked and its answer is
    negative, which a script tells apart from a registry out of reach (6)."""

    exit_code = 1

    def __init__(
        self, reason: str, message: str, *, registry: str, hint: str | None = None
    ) -> None:
        super().__init__(message, registry=registry, hint=hint)
        self.reason = reason


class ToolError(SlipwayError):
    exit_code = 7

    def __init__(self, tool: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{tool}: {message}", hint=hint)
        self.tool = tool


class ImageListRejected(SlipwayError):
    """An image list fails a check: malformed, unsigned, forged, expired,
    untrusted, from another endorser, or older than the one accepted before.

    ``reason`` is the first problem's stable code (docs/formats.md lists
    them); ``problems`` holds every (code, explanation) found, in the order
    the codes are documented; ``field`` names the list field at fault, when
    there is one."""

    exit_code = 1

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        problems: Sequence[tuple[str, str]] = (),
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.problems = list(problems) or [(reason, message)]
        self.field = field


class StillRunning(SlipwayError):
    """The command ran out of time waiting (``deploy --wait``, ``terminate
    --wait``); nothing failed and the run goes on without it."""

    exit_code = 8
