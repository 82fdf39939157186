"""openstacksdk's and keystoneauth's errors in our words: the cloud's own
message, the HTTP status, and a hint where one helps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from slipway.errors import CloudError, NotFound

__all__ = ["retryable", "translated"]

_HINTS = {
    401: "check the cloud's credentials in clouds.yaml (expired token or application credential?)",
    403: "the credentials lack a permission this needs",
    409: "the cloud's state changed under the request; try again",
    413: "the project's quota is used up",
    429: "the cloud kept throttling",
}


def _message(exc: BaseException) -> str:
    """The cloud's own words: the response body's message when there is one."""
    details = getattr(exc, "details", None)
    if details:
        return str(details)
    message = getattr(exc, "message", None)
    return str(message or exc)


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn the SDK's errors raised inside into ``CloudError``/``NotFound``."""
    import keystoneauth1.exceptions as kx
    import openstack.exceptions as ox

    try:
        yield
    except ox.NotFoundException as exc:
        raise NotFound(f"{cloud}: {action}: {_message(exc)}") from exc
    except ox.HttpException as exc:
        status = exc.status_code or 0
        raise CloudError(
            f"{action}: HTTP {status}: {_message(exc)}", cloud=cloud, hint=_HINTS.get(status)
        ) from exc
    except kx.http.HttpError as exc:  # raised while authenticating, before the SDK wraps
        status = exc.http_status or 0
        raise CloudError(
            f"{action}: HTTP {status}: {exc.message}", cloud=cloud, hint=_HINTS.get(status)
        ) from exc
    except (kx.ConnectionError, kx.DiscoveryFailure, kx.EndpointNotFound) as exc:
        raise CloudError(
            f"{action}: cloud unreachable: {exc}",
            cloud=cloud,
            hint="check auth_url in clouds.yaml, the service catalog and the network",
        ) from exc
    except (kx.ClientException, ox.SDKException) as exc:
        raise CloudError(f"{action}: {_message(exc)}", cloud=cloud) from exc


def retryable(exc: BaseException) -> bool:
    """Worth another try: the cloud overloaded (5xx, 429) or the network failed.
    A create retried after such an error looks its token up first."""
    import keystoneauth1.exceptions as kx
    import openstack.exceptions as ox

    if isinstance(exc, ox.HttpException):
        return (exc.status_code or 0) >= 500 or exc.status_code == 429
    return isinstance(exc, kx.ConnectionError | kx.http.HttpServerError)
