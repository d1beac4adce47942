"""Execute: ansible-playbook dry-runs and applies, their recap, redaction and nginx -t."""

from bot.execute.ansible import AnsibleRunner
from bot.execute.fake import FakeRunner, successful_run
from bot.execute.nginx import nginx_test
from bot.execute.redact import redact
from bot.execute.request import PlaybookRunner, Progress, RunRequest, skipped_run

__all__ = [
    "AnsibleRunner",
    "FakeRunner",
    "PlaybookRunner",
    "Progress",
    "RunRequest",
    "nginx_test",
    "redact",
    "skipped_run",
    "successful_run",
]
