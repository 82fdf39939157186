"""One conversation with a registry about one repository, over httpx2.

It authenticates as the registry asks (anonymous, Basic, or a Bearer token
from the realm the registry names), sends the Authorization header to the
registry's own origin only, bounds the time of every request, and turns
every transport and HTTP failure into a Slipway error carrying the
registry's own message. Nothing here knows about manifests or disk images.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx2

from slipway.adapters.oci._auth import Challenge, RegistryCredentials, parse_challenge, usable_token
from slipway.adapters.oci._streams import Timeouts, TooSlow, read_within
from slipway.adapters.oci.reference import OciReference, is_loopback, registry_url
from slipway.errors import NotFound, RegistryError

__all__ = ["MAX_REDIRECTS", "RegistrySession"]

MAX_ERROR_BYTES = 64 * 1024
MAX_TOKEN_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 400
MAX_REDIRECTS = 5
USER_AGENT = "slipway"

Body = bytes | Iterator[bytes] | None

_HINTS = {
    401: "check the registry's user name and password",
    403: "the registry's account lacks the right to do this",
    429: "the registry is throttling requests: try again later",
}


class RegistrySession:
    """Requests to the registry of ``reference``, authenticated for
    ``actions`` (``pull``, ``push``) on its repository. Use it in a ``with``."""

    def __init__(
        self,
        reference: OciReference,
        *,
        actions: tuple[str, ...],
        credentials: RegistryCredentials | None,
        plain_http: bool | None,
        timeouts: Timeouts,
    ) -> None:
        self.reference = reference
        self.host = reference.host
        self.timeouts = timeouts
        self.base = registry_url(reference, plain_http=plain_http)
        self._plain_http = plain_http
        self._scope = f"repository:{reference.repository}:{','.join(actions)}"
        self._credentials = credentials
        self._authorization: str | None = None
        self._client = httpx2.Client(
            timeout=_http_timeout(timeouts, timeouts.read),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )

    def __repr__(self) -> str:
        return f"RegistrySession({self.base!r}, {self._scope!r})"

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        """The URL of ``path`` under the repository (``manifests/latest``)."""
        return f"{self.base}/v2/{self.reference.repository}/{path}"

    def send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        headers: Mapping[str, str] | None = None,
        content: Body = None,
        read_timeout: float | None = None,
    ) -> httpx2.Response:
        """The response to one request, its body not read yet: the caller
        closes it. A 401 is answered as the registry's challenge asks and the
        request sent again, when its body can be sent again (not a stream)."""
        for attempt in range(1, 4):
            response = self._send_once(method, url, action, headers, content, read_timeout)
            if response.status_code != 401:
                return response
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            message = self.refusal_text(response, action)
            if attempt == 3 or isinstance(content, Iterator) or not self._answer(challenge, action):
                raise self._refused(401, action, message)
        raise AssertionError("unreachable: the third attempt returns or raises")

    def refuse(self, response: httpx2.Response, action: str) -> Exception:
        """The error for an unexpected answer: ``NotFound`` for a 404, a
        :class:`RegistryError` otherwise, with the registry's message."""
        return self._refused(response.status_code, action, self.refusal_text(response, action))

    def refusal_text(self, response: httpx2.Response, action: str) -> str:
        """The registry's own words for a failed request: the messages of the
        OCI error document when there is one, else the HTTP status. Control
        characters are shown escaped, and the text is cut at a bound."""
        try:
            with self.translated(action):
                body = read_within(
                    response.iter_raw(), limit=MAX_ERROR_BYTES, seconds=self.timeouts.small_body
                )
        except RegistryError:
            body = b""
        finally:
            response.close()
        words = _oci_error_messages(body) or f"HTTP {response.status_code}"
        if response.reason_phrase and words == f"HTTP {response.status_code}":
            words += f" {response.reason_phrase}"
        printable = words.encode("unicode_escape").decode("ascii")
        if len(printable) > MAX_MESSAGE_CHARS:
            printable = printable[:MAX_MESSAGE_CHARS] + "…"
        return printable

    def read_small(self, response: httpx2.Response, *, limit: int, action: str) -> bytes:
        """The whole body of ``response``: at most ``limit + 1`` bytes, within
        the small-body deadline. The response is closed."""
        try:
            with self.translated(action):
                return read_within(
                    response.iter_raw(), limit=limit, seconds=self.timeouts.small_body
                )
        finally:
            response.close()

    @contextlib.contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """Transport failures and deadlines raised inside, as RegistryError."""
        try:
            yield
        except TooSlow as exc:
            raise self.error(f"{action}: too slow: {exc}") from exc
        except httpx2.TimeoutException as exc:
            raise self.error(
                f"{action}: no answer within the timeout ({type(exc).__name__})",
                hint="check the network, or give the registry more time",
            ) from exc
        except httpx2.HTTPError as exc:
            raise self.error(
                f"{action}: the registry cannot be reached: {exc}",
                hint="check the host name, the port, and http/https",
            ) from exc

    def error(self, message: str, *, hint: str | None = None) -> RegistryError:
        return RegistryError(message, registry=self.host, hint=hint)

    def follow(self, response: httpx2.Response, action: str) -> str | None:
        """Where a redirect points, absolute; ``None`` when ``response`` is
        not one. A redirect from HTTPS to plain HTTP is refused."""
        if response.status_code not in (301, 302, 303, 307, 308):
            return None
        location = response.headers.get("Location", "")
        response.close()
        target = urljoin(str(response.request.url), location)
        scheme = urlsplit(target).scheme
        if scheme not in ("http", "https") or (
            response.request.url.scheme == "https" and scheme != "https"
        ):
            raise self.error(f"{action}: refused a redirect to {target[:200]!r}")
        return target

    def _send_once(
        self,
        method: str,
        url: str,
        action: str,
        headers: Mapping[str, str] | None,
        content: Body,
        read_timeout: float | None,
    ) -> httpx2.Response:
        extra = dict(headers or {})
        if self._authorization is not None and _same_origin(url, self.base):
            extra["Authorization"] = self._authorization
        timeout = _http_timeout(self.timeouts, read_timeout or self.timeouts.read)
        with self.translated(action):
            request = self._client.build_request(
                method, url, headers=extra, content=content, timeout=timeout
            )
            return self._client.send(request, stream=True)

    def _answer(self, challenge: Challenge | None, action: str) -> bool:
        """Set the Authorization the challenge asks for; ``False`` when this
        client has nothing new to offer (no credentials, or already tried)."""
        if challenge is None or (self._credentials is None and challenge.scheme == "basic"):
            return False
        if challenge.scheme == "basic":
            assert self._credentials is not None
            offered = self._credentials.basic_header()
        elif challenge.scheme == "bearer":
            offered = "Bearer " + self._token(challenge, action)
        else:
            raise self.error(f"{action}: the registry asks for {challenge.scheme} authentication")
        if offered == self._authorization:
            return False
        self._authorization = offered
        return True

    def _token(self, challenge: Challenge, action: str) -> str:
        realm = challenge.params.get("realm", "")
        self._check_realm(realm, action)
        # What the registry asks for now, and what this session will need
        # next (push after pull), so that one token serves the whole session.
        scopes = [challenge.params.get("scope", self._scope), self._scope]
        params = httpx2.QueryParams([("scope", scope) for scope in dict.fromkeys(scopes)])
        if "service" in challenge.params:
            params = params.add("service", challenge.params["service"])
        headers = {"Accept": "application/json"}
        if self._credentials is not None:
            headers["Authorization"] = self._credentials.basic_header()
        asking = f"{action}: a token from {realm}"
        with self.translated(asking):
            request = self._client.build_request("GET", realm, params=params, headers=headers)
            response = self._client.send(request, stream=True)
        if response.status_code != 200:
            raise self._refused(response.status_code, asking, self.refusal_text(response, asking))
        body = self.read_small(response, limit=MAX_TOKEN_BYTES, action=asking)
        try:
            token = usable_token(json.loads(body)) if len(body) <= MAX_TOKEN_BYTES else None
        except ValueError:
            token = None
        if token is None:
            raise self.error(f"{asking}: the answer holds no usable token")
        return token

    def _check_realm(self, realm: str, action: str) -> None:
        """Credentials go to a realm over HTTPS only, unless it is on this
        machine or the operator chose plain HTTP."""
        parts = urlsplit(realm)
        if parts.scheme == "https" and parts.hostname:
            return
        plain_allowed = self._plain_http or is_loopback(parts.netloc)
        if parts.scheme == "http" and parts.hostname and plain_allowed:
            return
        raise self.error(f"{action}: refused the token realm {realm[:200]!r}: not an HTTPS URL")

    def _refused(self, status: int, action: str, message: str) -> Exception:
        if status == 404:
            return NotFound(f"{self.host}: {action}: {message}")
        return self.error(f"{action}: {message}", hint=_HINTS.get(status))


def _http_timeout(timeouts: Timeouts, read: float) -> httpx2.Timeout:
    return httpx2.Timeout(
        connect=timeouts.connect, read=read, write=timeouts.read, pool=timeouts.connect
    )


def _same_origin(url: str, base: str) -> bool:
    one, other = urlsplit(url), urlsplit(base)
    return (one.scheme, one.netloc.lower()) == (other.scheme, other.netloc.lower())


def _oci_error_messages(body: bytes) -> str:
    """``CODE: message; …`` from an OCI error document, or ``""``."""
    try:
        document = json.loads(body[:MAX_ERROR_BYTES])
    except ValueError:
        return ""
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return ""
    words = []
    for entry in errors[:5]:
        if isinstance(entry, dict):
            code, message = entry.get("code"), entry.get("message")
            parts = [str(part) for part in (code, message) if isinstance(part, str) and part]
            if parts:
                words.append(": ".join(parts))
    return "; ".join(words)
