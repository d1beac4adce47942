"""The real server with a slow ``process``, for the restart tests (run as a script).

``process`` appends ``start ID`` to ``WORKDIR/work.log``, waits until ``WORKDIR/gate``
exists, appends ``done ID`` and returns "processed": a test decides when work ends.
Usage: serve_gated.py WORKDIR QUEUE [GRACE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bot.server.queue import Delivery
from bot.server.serve import serve
from bot.server.settings import ServerSettings


def main(workdir: Path, queue: Path, grace: float) -> int:
    log = workdir / "work.log"

    def process(delivery: Delivery) -> str:
        with log.open("a") as handle:
            handle.write(f"start {delivery.id}\n")
        while not (workdir / "gate").exists():
            time.sleep(0.01)
        with log.open("a") as handle:
            handle.write(f"done {delivery.id}\n")
        return "processed"

    settings = ServerSettings(
        port=0, queue_path=queue, secret="it's a secret to everybody", grace=grace
    )
    return serve(settings, process)


if __name__ == "__main__":
    grace = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), grace))
