"""What tokens cost, per model family (US$ per million tokens; cache writes are 5-minute).

Prices are public list prices; a model not listed is priced as Sonnet (the default), so a
cost cap errs on the safe side for cheaper models.
"""

from __future__ import annotations

PRICES: dict[str, tuple[float, float, float, float]] = {
    # family: (input, output, cache read, cache write)
    "opus": (5.0, 25.0, 0.50, 6.25),
    "sonnet": (3.0, 15.0, 0.30, 3.75),
    "haiku": (1.0, 5.0, 0.10, 1.25),
}


def cost_usd(model: str, inp: int, out: int, cache_read: int, cache_write: int) -> float:
    family = next((f for f in PRICES if f in model.lower()), "sonnet")
    price_in, price_out, price_read, price_write = PRICES[family]
    total = inp * price_in + out * price_out + cache_read * price_read + cache_write * price_write
    return total / 1_000_000
