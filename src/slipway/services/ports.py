"""The ports the services need: the catalog, identity and run stores, their
unit of work, and what runs reach machines and secrets through.

Adapters implement them (``slipway.adapters.store`` with SQLAlchemy); the
in-memory implementations next to them back most tests.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from slipway.domain.lockouts import Attempts
from slipway.domain.marketplace import (
    Appliance,
    ApplianceQuery,
    ApplianceVersion,
    Endorsement,
    ImageFile,
    ListPublication,
    Vo,
    VoRole,
)
from slipway.domain.modules import Access, Kind, ModuleVersion, Rights
from slipway.domain.runs import Run, RunEvent, RunState
from slipway.domain.sync import ListAcceptance, Subscription, SyncedImage, SyncRecord
from slipway.errors import DefinitionError

__all__ = [
    "CatalogStore",
    "CommandOutput",
    "DefinitionFile",
    "Facets",
    "GuestLogin",
    "GuestShell",
    "IdentityStore",
    "KeyPair",
    "ListedModule",
    "Login",
    "MarketStore",
    "MarketUnitOfWork",
    "ModuleQuery",
    "PasswordHasher",
    "ProbeResult",
    "Prober",
    "Queue",
    "RunStore",
    "SessionRecord",
    "SyncStore",
    "SyncUnitOfWork",
    "TokenRecord",
    "UnitOfWork",
    "UserRecord",
    "Vault",
]


@dataclass(frozen=True)
class Facets:
    """What a module is searched by, after inheritance: kept with the module
    so that lists filter and page in the store, not in Python."""

    description: str = ""
    os: str = ""  # the distribution, e.g. "debian"
    clouds: tuple[str, ...] = ()  # clouds it has a native image for
    parent: str | None = None  # the module it inherits from (name, no version)


@dataclass(frozen=True)
class ModuleQuery:
    """A filtered page of latest versions, by name. ``viewer`` limits it to
    what that user may view (None: everything); text matches name or
    description, case-insensitively."""

    kinds: tuple[Kind, ...] = (Kind.IMAGE, Kind.COMPONENT)
    text: str | None = None
    os: str | None = None
    cloud: str | None = None
    owner: str | None = None
    viewer: Access | None = None
    limit: int | None = 50
    offset: int = 0


@dataclass(frozen=True)
class ListedModule:
    version: ModuleVersion
    facets: Facets


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    user: str
    csrf: str
    expires_at: datetime


class DefinitionFile(Protocol):
    """A validated definition read from a file (the definitions adapter makes them)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    @property
    def document(self) -> dict[str, Any]: ...

    @property
    def file(self) -> str: ...

    def error(self, message: str, *path: str | int, hint: str | None = None) -> DefinitionError:
        """An error pointing at ``path`` (keys and indexes) in the file."""


class UserRecord(Protocol):
    name: str
    admin: bool


class CatalogStore(Protocol):
    """Modules with immutable versions, their rights, and their search facets.
    Who the users are is the :class:`IdentityStore`'s."""

    def latest(self, name: str) -> ModuleVersion | None: ...

    def get(self, name: str, version: int) -> ModuleVersion | None: ...

    def versions(self, name: str) -> Sequence[ModuleVersion]: ...

    def list_latest(self, kind: Kind | None = None) -> Sequence[ModuleVersion]: ...

    def add_version(self, version: ModuleVersion) -> None:
        """Save ``version``; its number must be one more than the latest (or 1)."""

    def set_rights(self, name: str, rights: Rights) -> None: ...

    # -- search (facets are kept by the catalog service on every write) -------

    def set_facets(self, name: str, facets: Facets) -> None: ...

    def unindexed(self) -> Sequence[str]:
        """Names of modules whose facets were never computed."""

    def children(self, name: str) -> Sequence[str]:
        """Names of modules whose latest version inherits from ``name``."""

    def search(self, query: ModuleQuery) -> tuple[Sequence[ListedModule], int]:
        """One page of matching modules and the number of all matches."""


class IdentityStore(Protocol):
    """Who is who: users, groups and their members, and the credentials
    people log in with — only hashes of passwords, tokens and session
    cookies — with the log-in tries counted against guessing."""

    def ensure_user(self, name: str, *, admin: bool = False) -> None: ...

    def user_exists(self, name: str) -> bool: ...

    def has_users(self) -> bool: ...

    def is_admin(self, name: str) -> bool: ...

    def add_group(self, name: str) -> None: ...

    def group_exists(self, name: str) -> bool: ...

    def add_member(self, group: str, user: str, *, editor: bool = False) -> None:
        """Make ``user`` a member of ``group``; ``editor``: one who may also
        create modules in the group's namespace (``GROUP/…``). Adding an
        existing member as an editor makes them one; nobody is demoted."""

    def groups_of(self, user: str) -> frozenset[str]: ...

    def editor_of(self, user: str) -> frozenset[str]:
        """The groups in whose namespace ``user`` may create modules."""

    # -- credentials: only hashes are stored ---------------------------------

    def set_password_hash(self, user: str, password_hash: str) -> None: ...

    def password_hash(self, user: str) -> str | None: ...

    def has_passwords(self) -> bool: ...

    def add_token(self, user: str, name: str, token_hash: str, created_at: datetime) -> int: ...

    def token_user(self, token_hash: str) -> str | None: ...

    def tokens_of(self, user: str) -> Sequence[TokenRecord]: ...

    def delete_token(self, user: str, token_id: int) -> bool: ...

    def add_session(self, token_hash: str, record: SessionRecord) -> None: ...

    def session_of(self, token_hash: str) -> SessionRecord | None: ...

    def delete_session(self, token_hash: str) -> None: ...

    def end_sessions(self, user: str) -> None:
        """End every dashboard session of ``user``."""

    def expire_sessions(self, now: datetime) -> None:
        """Forget sessions that expired before ``now``."""

    # -- log-in attempts, per account or client address ("subject") ----------

    def attempts_for_update(self, subject: str) -> Attempts | None:
        """The tries counted for ``subject``. Until this transaction ends, no
        other one reads or counts them, in this process or any other."""

    def save_attempts(self, subject: str, attempts: Attempts, expires_at: datetime) -> None:
        """Keep ``attempts`` for ``subject`` until ``expires_at``."""

    def clear_attempts(self, subject: str) -> None: ...

    def expire_attempts(self, now: datetime) -> None:
        """Forget tries kept until before ``now``; records that another
        transaction is counting are left for the next time."""


class PasswordHasher(Protocol):
    """A slow, salted password hash (the adapter picks the algorithm)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class RunStore(Protocol):
    """Runs, their events, and the leases that keep two workers off one run."""

    def add(self, run: Run) -> None: ...

    def get(self, run_id: str) -> Run | None: ...

    def save(self, run: Run) -> None:
        """Store ``run`` if nobody saved it since it was read (its ``version``
        still matches), bumping the version; else raise ``Conflict``."""

    def list(
        self,
        *,
        owner: str | None = None,
        states: Collection[RunState] | None = None,
        cloud: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Run]:
        """Newest first; runs created in the same instant by id, descending."""

    def add_event(self, event: RunEvent) -> None: ...

    def events(self, run_id: str) -> Sequence[RunEvent]: ...

    def claim(self, run_id: str, worker: str, now: datetime, until: datetime) -> bool:
        """Take the run's lease for ``worker`` until ``until`` unless another
        worker holds an unexpired one; True when taken."""

    def release(self, run_id: str, worker: str, next_step_at: datetime | None) -> None:
        """Give the lease back, noting when the next step is due (None: none)."""

    def clouds(self) -> Sequence[str]:
        """Every cloud some run was deployed on."""

    def due(self, now: datetime) -> Sequence[str]:
        """Runs whose next step is overdue and whose lease has expired: the ones
        a dead worker left behind."""


class UnitOfWork(AbstractContextManager["UnitOfWork"], Protocol):
    """One transaction over the store: leaving the block without ``commit()``
    rolls back, so a failed action writes nothing."""

    @property
    def store(self) -> CatalogStore: ...

    @property
    def identity(self) -> IdentityStore: ...

    @property
    def runs(self) -> RunStore: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class MarketStore(Protocol):
    """Appliances with immutable versions; VOs, their members, draft lists
    and published list versions. Who may do what is the service's."""

    def appliance(self, name: str) -> Appliance | None: ...

    def add_appliance(self, appliance: Appliance) -> None:
        """Raises ``Conflict`` when the name is taken."""

    def set_appliance_rights(self, name: str, rights: Rights) -> None: ...

    def add_version(self, version: ApplianceVersion) -> None:
        """Raises ``Conflict`` when the appliance has that version already."""

    def versions(self, name: str) -> Sequence[ApplianceVersion]:
        """Oldest first."""

    def version(self, name: str, label: str) -> ApplianceVersion | None: ...

    def add_artifact(
        self, name: str, version: str, sha512: str, reference: str, by: str, at: datetime
    ) -> None:
        """Note that the version's file ``sha512`` was pushed as the OCI
        artifact ``reference`` (pinned by digest); once is enough."""

    def search(self, query: ApplianceQuery) -> tuple[Sequence[Appliance], int]:
        """One page of matching appliances (by name) and the number of all matches."""

    def files_by_sha512(self, sha512: str) -> Sequence[tuple[Appliance, ImageFile]]: ...

    def vo(self, name: str) -> Vo | None: ...

    def vos(self) -> Sequence[Vo]: ...

    def add_vo(self, vo: Vo) -> None: ...

    def set_obsoleted(self, name: str, when: datetime | None) -> None: ...

    def set_member(self, vo: str, user: str, role: VoRole | None) -> None: ...

    def members(self, vo: str) -> Sequence[tuple[str, VoRole]]: ...

    def role_of(self, vo: str, user: str) -> VoRole | None: ...

    def draft(self, vo: str) -> Sequence[Endorsement]: ...

    def endorse(self, vo: str, endorsement: Endorsement) -> None:
        """Put the version in the draft in place of the appliance's other one."""

    def withdraw(self, vo: str, appliance: str) -> bool: ...

    def add_publication(self, publication: ListPublication) -> None:
        """Raises ``Conflict`` when that number was published meanwhile."""

    def publication(self, vo: str, number: int | None) -> ListPublication | None:
        """Version ``number`` of the VO's list, or the newest (None)."""

    def publications(self, vo: str) -> Sequence[ListPublication]:
        """Newest first."""

    def endorsements_of(self, appliance: str) -> Sequence[tuple[str, str, int]]:
        """(VO, version, list number) of the VOs whose newest list holds it."""


class MarketUnitOfWork(AbstractContextManager["MarketUnitOfWork"], Protocol):
    """A :class:`UnitOfWork` that also reaches the marketplace."""

    @property
    def identity(self) -> IdentityStore: ...

    @property
    def market(self) -> MarketStore: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class SyncStore(Protocol):
    """Subscriptions, the native images each keeps on its cloud, the history
    of syncs, and the lease that lets one worker at a time sync a subscription."""

    def subscription(self, name: str) -> Subscription | None: ...

    def subscriptions(self) -> Sequence[Subscription]: ...

    def add_subscription(self, s: Subscription) -> None:
        """Raises ``Conflict`` when the name is taken."""
        ...

    def remove_subscription(self, name: str) -> None: ...

    def claim(self, name: str, worker: str, now: datetime, until: datetime) -> bool: ...

    def release(self, name: str, worker: str, next_at: datetime | None) -> None: ...

    def holder(self, name: str, now: datetime) -> str | None: ...

    def due(self, now: datetime) -> Sequence[str]: ...

    def schedule(self, name: str, when: datetime) -> None:
        """Make the subscription's next sync due at ``when``."""
        ...

    def acceptance(self, name: str) -> ListAcceptance | None: ...

    def accept(self, name: str, accepted: ListAcceptance) -> None: ...

    def images(self, name: str) -> Sequence[SyncedImage]: ...

    def save_image(self, image: SyncedImage) -> None: ...

    def synced(self, vo: str, appliance: str) -> Sequence[tuple[str, SyncedImage]]:
        """Active and hidden images of the VO's appliance, with the cloud of each."""
        ...

    def add_run(self, record: SyncRecord) -> int: ...

    def save_run(self, record: SyncRecord) -> None: ...

    def runs(self, name: str | None, limit: int) -> Sequence[SyncRecord]: ...

    def run(self, run_id: int) -> SyncRecord | None: ...


class SyncUnitOfWork(AbstractContextManager["SyncUnitOfWork"], Protocol):
    """One transaction over the sync store and who is who."""

    @property
    def identity(self) -> IdentityStore: ...

    @property
    def sync(self) -> SyncStore: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class ProbeResult(Protocol):
    """What a look at a machine found (see ``slipway.adapters.ssh.Probe``)."""

    @property
    def reachable(self) -> bool: ...

    @property
    def finished(self) -> bool: ...

    @property
    def succeeded(self) -> bool: ...

    @property
    def step(self) -> str: ...

    @property
    def cpu(self) -> int | None: ...

    @property
    def ram_kb(self) -> int | None: ...

    @property
    def output_tail(self) -> str: ...

    @property
    def problem(self) -> str: ...


class Prober(Protocol):
    """Looks at a machine over SSH: reachable, cloud-init finished, recipes ok."""

    def probe(self, host: str, port: int, user: str, private_key: str) -> ProbeResult: ...


class Vault(Protocol):
    """Keeps secrets (run private keys) encrypted at rest."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class KeyPair(Protocol):
    """An SSH key pair: the OpenSSH private key text and the public key line."""

    @property
    def private(self) -> str: ...

    @property
    def public(self) -> str: ...


class Queue(Protocol):
    """Runs ``advance(run_id)`` on some worker, now or after ``delay`` seconds."""

    def enqueue(self, run_id: str, delay: float = 0.0) -> None: ...


@dataclass(frozen=True)
class CommandOutput:
    """What a command run on a machine printed, and its exit status (-1: the
    connection failed before the command ended; ``stderr`` then says why)."""

    exit_status: int
    stdout: str
    stderr: str = ""


class GuestShell(Protocol):
    """A logged-in shell on a machine."""

    def run(self, command: str, timeout: float) -> CommandOutput:
        """Run ``command`` (a shell line); give up after ``timeout`` seconds
        without output."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Login:
    """One attempt to log in over SSH: ``shell`` when it worked; ``answered``
    when an SSH server spoke at all (so a refusal is the key's, not the
    network's); ``problem`` in words otherwise."""

    shell: GuestShell | None
    answered: bool = False
    problem: str = ""


class GuestLogin(Protocol):
    """Logs in to a machine over SSH with a private key."""

    def login(self, host: str, port: int, user: str, private_key: str) -> Login: ...
