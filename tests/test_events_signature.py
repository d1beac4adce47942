"""The webhook signature check: only a configured secret and a matching sha256 pass."""

from __future__ import annotations

import pytest

from bot.events.signature import Signature, check_signature, sign

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
# GitHub's documented example: this secret and body give this signature.
GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_example() -> None:
    assert sign(SECRET, BODY) == GITHUB_EXAMPLE
    assert check_signature(SECRET, BODY, GITHUB_EXAMPLE) is Signature.VALID


@pytest.mark.parametrize(
    ("secret", "body", "header", "verdict"),
    [
        (None, BODY, GITHUB_EXAMPLE, Signature.NO_SECRET),
        ("", BODY, GITHUB_EXAMPLE, Signature.NO_SECRET),
        (SECRET, BODY, None, Signature.MISSING),
        (SECRET, BODY, "", Signature.MISSING),
        (SECRET, BODY, "sha1=0a0b", Signature.MALFORMED),
        (SECRET, BODY, GITHUB_EXAMPLE[7:], Signature.MALFORMED),
        (SECRET, BODY, GITHUB_EXAMPLE[:-1], Signature.MALFORMED),
        (SECRET, BODY, GITHUB_EXAMPLE + "00", Signature.MALFORMED),
        (SECRET, BODY, "sha256=" + "é" * 64, Signature.MALFORMED),
        (SECRET, BODY, "sha256=" + "0" * 64, Signature.MISMATCH),
        (SECRET, BODY + b" ", GITHUB_EXAMPLE, Signature.MISMATCH),
        (SECRET + "x", BODY, GITHUB_EXAMPLE, Signature.MISMATCH),
        (SECRET, BODY, GITHUB_EXAMPLE.upper().replace("SHA256", "sha256"), Signature.VALID),
        (SECRET, BODY, f" {GITHUB_EXAMPLE} ", Signature.VALID),
    ],
)
def test_every_other_case_is_its_own_refusal(
    secret: str | None, body: bytes, header: str | None, verdict: Signature
) -> None:
    assert check_signature(secret, body, header) is verdict
