"""Calls to one zone of Exoscale's v2 API through the SDK's client.

The SDK sends each call once, with no timeout, and waits for asynchronous
operations with its own schedule (every 3 s at first, up to a minute). Here:
every request has a timeout; reads and deletes are retried on throttling,
server errors and network errors with exponential backoff and full jitter; an
operation is polled every ``poll_interval`` seconds until ``operation_timeout``;
and the zone is checked once, before the first call, so that a zone Exoscale
does not have is said to be one rather than surfacing as a failed request.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from slipway.connectors.exoscale._errors import is_transient, translated
from slipway.errors import CloudError

__all__ = ["DEFAULT_ENDPOINT", "ApiSettings", "ExoscaleApi", "timed_session"]

DEFAULT_ENDPOINT = "https://api-{zone}.exoscale.com/v2"
"""Where each zone's v2 API is; ``{zone}`` is the cloud's region."""


@dataclass(frozen=True)
class ApiSettings:
    """How patiently to talk to the API. Every duration in seconds."""

    endpoint: str = DEFAULT_ENDPOINT
    timeout: float = 30.0
    attempts: int = 4
    poll_interval: float = 1.0
    operation_timeout: float = 600.0

    def url(self, zone: str) -> str:
        return self.endpoint.replace("{zone}", zone).rstrip("/")


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: the SDK sets none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Any = None,
    ) -> requests.Response:
        return super().send(request, stream, timeout or self._timeout, verify, cert, proxies)


def timed_session(session: requests.Session, timeout: float) -> requests.Session:
    """``session`` with a timeout on every request it sends."""
    adapter = _TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ExoscaleApi:
    """One zone. ``client`` is the SDK's ``exoscale.api.v2.Client`` for that zone."""

    def __init__(
        self,
        cloud: str,
        zone: str,
        client: Any,
        settings: ApiSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cloud = cloud
        self.zone = zone
        self.client = client
        self.settings = settings
        self._sleep = sleep
        self._zone_checked = False
        self._lock = threading.Lock()

    # -- calls -----------------------------------------------------------------------

    def read(self, action: str, operation: str, **params: Any) -> Any:
        """A call that changes nothing, retried on transient errors."""
        self.check_zone()
        with translated(self.cloud, action):
            return self.retrying(partial(getattr(self.client, operation), **params))

    def change(self, action: str, operation: str, *, retry: bool = False, **params: Any) -> Any:
        """A call that starts an asynchronous operation, waited for until it ends.
        ``retry`` only for what is safe to repeat (a delete)."""
        self.check_zone()
        with translated(self.cloud, action):
            call = partial(getattr(self.client, operation), **params)
            started = self.retrying(call) if retry else call()
            return self.finished(action, started)

    def retrying(self, call: Callable[[], Any]) -> Any:
        for attempt in range(1, self.settings.attempts + 1):
            try:
                return call()
            except Exception as exc:
                if attempt >= self.settings.attempts or not is_transient(exc):
                    raise
                self.back_off(attempt)
        raise AssertionError("unreachable")

    def back_off(self, attempt: int) -> None:
        """Full jitter, base 2, at most 20 s (as botocore's standard mode)."""
        self._sleep(random.uniform(0, min(20.0, 2.0 ** (attempt - 1))))

    # -- operations ------------------------------------------------------------------

    def finished(self, action: str, operation: dict[str, Any]) -> dict[str, Any]:
        """Poll ``operation`` until it leaves ``pending``; its final form on
        success, else a ``CloudError`` with the API's reason and message."""
        deadline = time.monotonic() + self.settings.operation_timeout
        while operation.get("state") == "pending":
            if time.monotonic() >= deadline:
                raise CloudError(
                    f"{action}: operation {operation.get('id')} still pending after "
                    f"{self.settings.operation_timeout:g} s",
                    cloud=self.cloud,
                    hint="the cloud may still finish it; raise operation_timeout if this recurs",
                )
            self._sleep(self.settings.poll_interval)
            operation = self.retrying(partial(self.client.get_operation, id=operation["id"]))
        if operation.get("state") == "success":
            return operation
        words = [str(operation.get(k)) for k in ("state", "reason", "message") if operation.get(k)]
        raise CloudError(f"{action}: {': '.join(words) or 'operation failed'}", cloud=self.cloud)

    # -- the zone --------------------------------------------------------------------

    def check_zone(self) -> None:
        """Once: does the API at the zone's endpoint answer, and list this zone?"""
        with self._lock:
            if self._zone_checked:
                return
            self._zone_checked = self._zone_listed()

    def _zone_listed(self) -> bool:
        url = f"{self.settings.url(self.zone)}/zone"
        known = ", ".join(_sdk_zones())
        hint = f"the cloud's region must be an Exoscale zone (the SDK knows {known})"
        # Zones are public: asked without credentials (a key limited to some
        # services is refused them), and with a timeout, which the SDK's
        # list_zones does not set.
        try:
            with timed_session(requests.Session(), self.settings.timeout) as session:
                reply = session.get(url)
        except requests.RequestException as exc:
            raise CloudError(
                f"zone {self.zone}: no Exoscale API answers at {url}: {exc}",
                cloud=self.cloud,
                hint=hint,
            ) from exc
        if reply.status_code != 200:
            raise CloudError(
                f"zone {self.zone}: the API at {url} answers HTTP {reply.status_code}",
                cloud=self.cloud,
                hint=hint,
            )
        names = [str(z.get("name")) for z in reply.json().get("zones", [])]
        if self.zone not in names:
            raise CloudError(
                f"zone {self.zone} is not one of the zones Exoscale lists: {', '.join(names)}",
                cloud=self.cloud,
                hint="set the cloud's region to one of them",
            )
        return True


def _sdk_zones() -> list[str]:
    from exoscale.api.v2 import Client

    server = Client._api_spec["servers"][0]
    return list(server["variables"]["zone"]["enum"])
