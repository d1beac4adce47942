"""The server's settings: read once by ``infrabot serve``, frozen."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.server.alerts import AlertCredentials

SECRET_ENV = "INFRABOT_WEBHOOK_SECRET"
GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    queue_path: Path
    secret: SecretStr | None = None
    """The GitHub webhook secret; without one every delivery is refused (401)."""
    alerts: AlertCredentials = AlertCredentials()
    """What ``POST /alerts`` accepts; with none configured every post is refused (401)."""
    max_body: int = Field(default=GITHUB_MAX_PAYLOAD, gt=0)
    grace: float = Field(default=20.0, ge=0)
    """Seconds a stop waits for the delivery in progress before leaving it to be requeued."""
    max_attempts: int = Field(default=3, ge=1)
    """Starts that may find a delivery unfinished before it is failed rather than requeued."""
    work_in_child: bool = True
    """Run ``process`` in a forked child (``bot.server.child``); False: in a thread beside
    the event loop, where Python work holds the GIL the acknowledgements need."""
    logs_dir: Path | None = None
    """The runs' artifacts, served at ``/logs/<token>/<path>`` (``bot.server.logs``)."""

    def secret_value(self) -> str | None:
        return self.secret.get_secret_value() if self.secret else None
