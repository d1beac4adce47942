"""``is_hostname`` is the ``fqdn`` package's check (plus whole-value rules) made fast: it
must agree with ``FQDN(value, min_labels=1).is_valid`` on every printable ASCII value."""

from __future__ import annotations

import random
import string

from fqdn import FQDN

from bot.model.resources import is_hostname


def _candidates(rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-._"
    values = ["a", "A.b", "-a", "a-", "a..b", ".", "a.", "x" * 63, "x" * 64, "1.2.3.4", "_x"]
    values += [("x" * 63 + ".") * 3 + "x" * n + end for n in (59, 60, 61) for end in ("", ".")]
    for _ in range(5000):
        if rng.random() < 0.5:
            labels = [
                rng.choice(alphabet[:-3]) * rng.randint(1, 65) for _ in range(rng.randint(1, 5))
            ]
            values.append(".".join(labels) + rng.choice(["", "."]))
        else:
            values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))))
    return values


def test_agrees_with_fqdn() -> None:
    for value in _candidates(random.Random(9)):
        assert is_hostname(value) == bool(FQDN(value, min_labels=1).is_valid), value
