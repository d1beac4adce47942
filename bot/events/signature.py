"""GitHub webhook signatures (``X-Hub-Signature-256``), checked without I/O.

Theory of operation: GitHub signs the raw bytes of each delivery with HMAC-SHA256 under
the webhook's secret and sends ``sha256=<64 hex digits>``. A delivery is trusted only
when a secret is configured *and* the header is present, well formed and equal to our
own digest of the exact bytes received, compared in constant time
(``hmac.compare_digest``). Every other case is its own refusal, so a server that lost
its secret refuses everything instead of trusting everything (gidgethub skips the check
when it has no secret; this module does not). The legacy SHA-1 ``X-Hub-Signature``
header is never consulted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

SIGNATURE_HEADER = "X-Hub-Signature-256"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class Signature(StrEnum):
    """The verdict on one delivery's signature; only ``VALID`` may be trusted."""

    VALID = "valid"
    NO_SECRET = "no webhook secret is configured"
    MISSING = "the delivery carries no X-Hub-Signature-256"
    MALFORMED = "X-Hub-Signature-256 is not sha256=<64 hex digits>"
    MISMATCH = "X-Hub-Signature-256 does not match the body"


def sign(secret: str, body: bytes) -> str:
    """The header value GitHub sends for ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(secret: str | None, body: bytes, header: str | None) -> Signature:
    """Whether ``header`` proves that someone holding ``secret`` sent ``body``.

    An empty secret counts as none: a webhook configured without a secret is unsigned.
    """
    if not secret:
        return Signature.NO_SECRET
    if not header:
        return Signature.MISSING
    algorithm, _, digest = header.strip().partition("=")
    if algorithm != "sha256" or not _HEX_DIGEST.fullmatch(digest):
        return Signature.MALFORMED
    expected = sign(secret, body).encode()
    given = ("sha256=" + digest.lower()).encode()
    return Signature.VALID if hmac.compare_digest(expected, given) else Signature.MISMATCH


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    """True only when ``check_signature`` finds the delivery validly signed."""
    return check_signature(secret, body, header) is Signature.VALID
