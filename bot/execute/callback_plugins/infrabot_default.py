"""Ansible's default stdout callback, minus the error text of ``no_log`` tasks.

ansible-core 2.19 keeps a failed task's error summary through ``no_log`` censoring and
prints it ("[ERROR]: Task failed: Action failed: <message>", with the source lines around
the task), so a ``fail: msg="{{ secret }}"`` under ``no_log: true`` lands in the log.  This
plugin is the base that ansible-runner's ``awx_display`` extends (it honours
``ORIGINAL_STDOUT_CALLBACK``), so the log and the job events both lose that text.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

DOCUMENTATION = """
    name: infrabot_default
    type: stdout
    short_description: default output, without the error text of no_log tasks
    description:
        - The default stdout callback; a failed no_log task shows no error text.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
"""


class CallbackModule(DefaultCallback):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "infrabot_default"

    def _handle_exception(self, result: MutableMapping[str, Any], use_stderr: bool = False) -> None:
        if "censored" in result:
            result.pop("exception", None)
            return
        super()._handle_exception(result, use_stderr=use_stderr)
