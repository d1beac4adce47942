"""redact(): what it masks, what it keeps, and that it is idempotent."""

from __future__ import annotations

import pytest

from bot.execute import redact

GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"

MASKED = [
    (f"token {GHP} here", "token ghp_*** here"),
    ("gho_abcdefghijklmnop1234", "gho_***"),
    ("ghs_abcdefghijklmnop1234 x", "ghs_*** x"),
    (f"url https://x:{PAT}@github.com", "url https://x:github_pat_***@github.com"),
    ("key sk-ant-api03-AbC_dEf-123456789", "key sk-ant-***"),
    ("aws AKIAIOSFODNN7EXAMPLE ok", "aws AKIA*** ok"),
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
    ("authorization: token deadbeefcafe", "authorization: token ***"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
    ("curl -H 'Bearer eyJhbGciOi.J9.x'", "curl -H 'Bearer ***'"),
    ("password=hunter2 user=bob", "password=*** user=bob"),
    ("db_password: s3cret!", "db_password: ***"),
    ("token=abc&page=2", "token=***&page=2"),
    ("secret = 'two words'", "secret = '***'"),
    ('{"api_key": "a b c", "name": "x"}', '{"api_key": "***", "name": "x"}'),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=***"),
    ("ANTHROPIC_API_KEY=abc123", "ANTHROPIC_API_KEY=***"),
    ("INFRABOT_WEBHOOK_SECRET=xyz", "INFRABOT_WEBHOOK_SECRET=***"),
    ("PVEAPIToken=root@pam!ci=0f3c-11aa", "PVEAPIToken=***"),
    ("Authorization: PVEAPIToken=root@pam!ci=0f3c", "Authorization: ***"),
    (
        "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
        "-----END OPENSSH PRIVATE KEY-----\nz",
        "a\n-----BEGIN OPENSSH PRIVATE KEY-----***-----END OPENSSH PRIVATE KEY-----\nz",
    ),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow (cut)", "-----BEGIN RSA PRIVATE KEY-----***"),
    (
        '"key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"',
        '"key": "-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----\\n"',
    ),
]

KEPT = [
    "hello world",
    "TASK [copy the vhost] ****",
    "--- /etc/nginx/a.conf\n+++ /etc/nginx/a.conf\n@@ -1 +1 @@\n-listen 80;\n+listen 81;",
    "the token count is 3",
    "ghp_short",
    "ok: [proxy1] => changed=false",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_is_kept(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", [t for t, _ in MASKED] + KEPT)
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_a_long_run_of_word_characters_is_left_as_it_is() -> None:
    """A 70,000-character token-like run (a base64 blob in a log, a pasted body): before the
    key rule was anchored at a run's start this took minutes (quadratic backtracking)."""
    blob = "x" * 70_000
    assert redact(blob) == blob
    assert redact(f"{blob} password=hunter2") == f"{blob} password=***"
