"""boto3's errors in our words: the cloud's own message, a hint where one helps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from slipway.errors import CloudError, NotFound

__all__ = ["NOT_FOUND_CODES", "translated"]

NOT_FOUND_CODES = frozenset({
    "InvalidInstanceID.NotFound",
    "InvalidInstanceID.Malformed",
    "InvalidGroup.NotFound",
})  # fmt: skip

_HINTS = {
    "AuthFailure": "check the cloud's credentials",
    "UnauthorizedOperation": "the credentials lack a permission this needs",
    "InvalidClientTokenId": "check the cloud's credentials",
    "SignatureDoesNotMatch": "check the cloud's secret key",
    "InstanceLimitExceeded": "the account's instance quota is used up",
    "VcpuLimitExceeded": "the account's vCPU quota is used up",
    "InsufficientInstanceCapacity": "try another instance type or availability zone",
    "InvalidAMIID.NotFound": "the image's native id for this cloud does not exist in this region",
    "InvalidAMIID.Malformed": "the image's native id for this cloud is not an AMI id",
    "RequestLimitExceeded": "the cloud kept throttling after every retry",
}


@contextlib.contextmanager
def translated(cloud: str, action: str) -> Iterator[None]:
    """Turn botocore errors raised inside into ``CloudError``/``NotFound``."""
    import botocore.exceptions as bx

    try:
        yield
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", str(exc))
        if code in NOT_FOUND_CODES:
            raise NotFound(f"{cloud}: {action}: {message}") from exc
        raise CloudError(
            f"{action}: {code}: {message}", cloud=cloud, hint=_HINTS.get(code)
        ) from exc
    except bx.NoCredentialsError as exc:
        raise CloudError(f"{action}: no credentials", cloud=cloud,
                         hint="set the cloud's profile or AWS_ACCESS_KEY_ID") from exc  # fmt: skip
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
        raise CloudError(f"{action}: cloud unreachable: {exc}", cloud=cloud,
                         hint="check the endpoint and the network") from exc  # fmt: skip
    except bx.BotoCoreError as exc:
        raise CloudError(f"{action}: {exc}", cloud=cloud) from exc
