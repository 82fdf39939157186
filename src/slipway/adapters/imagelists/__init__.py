"""HEPiX image lists: read, verify, write and sign them.

``payload`` reads the JSON into domain values, ``render`` writes it back as
AppDB does, ``mime`` splits S/MIME messages, ``cms`` checks their PKCS#7
signatures, ``trust`` the chain to a CA directory, ``verify`` puts the checks
together, ``signing`` signs, ``source`` reads files and URLs.
"""

from slipway.adapters.imagelists.payload import MAX_IMAGES, MAX_LIST_BYTES, parse_image_list
from slipway.adapters.imagelists.render import image_list_document, render_image_list
from slipway.adapters.imagelists.signing import (
    EndorserCredentials,
    endorser_of,
    load_endorser_credentials,
    sign_image_list,
)
from slipway.adapters.imagelists.source import read_list_source
from slipway.adapters.imagelists.trust import (
    TrustAnchors,
    distinguished_name,
    load_ca_dir,
    parse_endorser_name,
)
from slipway.adapters.imagelists.verify import (
    MAX_MESSAGE_BYTES,
    TrustPolicy,
    VerifiedImageList,
    verify_image_list,
)

__all__ = [
    "MAX_IMAGES",
    "MAX_LIST_BYTES",
    "MAX_MESSAGE_BYTES",
    "EndorserCredentials",
    "TrustAnchors",
    "TrustPolicy",
    "VerifiedImageList",
    "distinguished_name",
    "endorser_of",
    "image_list_document",
    "load_ca_dir",
    "load_endorser_credentials",
    "parse_endorser_name",
    "parse_image_list",
    "read_list_source",
    "render_image_list",
    "sign_image_list",
    "verify_image_list",
]
