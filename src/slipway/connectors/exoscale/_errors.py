"""The Exoscale SDK's errors in our words: the API's own message, a hint where one helps."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from slipway.errors import CloudError, NotFound

__all__ = ["CREDENTIALS_HINT", "answer_of", "is_transient", "translated"]

CREDENTIALS_HINT = (
    "check the cloud's API key and secret: api_key and api_secret in the operator's "
    "[clouds.NAME] table, or EXOSCALE_API_KEY and EXOSCALE_API_SECRET"
)
_HINTS = {
    403: CREDENTIALS_HINT,
    429: "the cloud kept throttling after every retry",
}


def answer_of(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the API's own message carried by an SDK exception."""
    response: Any = getattr(exc, "response", None)
    if response is None:
        return 0, str(exc)
    text = response.text or ""
    try:
        message = json.loads(text).get("message") or text
    except (ValueError, AttributeError):
        message = text
    return int(response.status_code), str(message).strip() or f"HTTP {response.status_code}"


def is_transient(exc: Exception) -> bool:
    """Worth another attempt: throttling, a server error, the network."""
    import requests
    from exoscale.api.exceptions import ExoscaleAPIException

    if isinstance(exc, ExoscaleAPIException):
        status, _ = answer_of(exc)
        return status == 429 or status >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn the SDK's and requests' errors raised inside into ``CloudError``/``NotFound``."""
    import requests
    from exoscale.api.exceptions import ExoscaleAPIException

    try:
        yield
    except ExoscaleAPIException as exc:
        status, message = answer_of(exc)
        if status == 404:
            raise NotFound(f"{cloud}: {action}: {message}") from exc
        hint = _HINTS.get(status)
        if hint is None and status >= 500:
            hint = "the cloud failed after every retry; try again later"
        raise CloudError(f"{action}: HTTP {status}: {message}", cloud=cloud, hint=hint) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise CloudError(f"{action}: cloud unreachable: {exc}", cloud=cloud,
                         hint="check the endpoint and the network") from exc  # fmt: skip
    except requests.RequestException as exc:
        raise CloudError(f"{action}: {exc}", cloud=cloud) from exc
