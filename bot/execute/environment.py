"""The environment ansible-playbook runs with: built from an allow list, never copied.

Theory of operation: ansible-runner seeds the child's environment with a copy of
``os.environ`` (``BaseConfig.prepare_env``) and writes it into the run's artifacts
(``<ident>/command``).  The bot's environment holds its credentials (GITHUB_TOKEN,
ANTHROPIC_API_KEY, the webhook secret...), so after ansible-runner has prepared its config
the adapter replaces that environment with ``runner_env``: the variables built here plus the
few that ansible-runner itself needs (its callback plugin, fact cache, artifact dir).
Nothing else from ``os.environ`` reaches the child or the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

CALLBACK_PLUGINS = Path(__file__).resolve().parent / "callback_plugins"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Harmless variables a run may need (SSH_AUTH_SOCK: a socket path, for SSH to real hosts).
_PASSED_THROUGH = ("USER", "LOGNAME", "TZ", "TMPDIR", "SSH_AUTH_SOCK")

# What ansible-runner adds to the environment for its own machinery (config/_base.py,
# config/runner.py).  Their values come from ansible-runner, not from the bot's environment.
_RUNNER_KEYS = frozenset(
    {
        "ANSIBLE_STDOUT_CALLBACK",
        "ORIGINAL_STDOUT_CALLBACK",
        "ANSIBLE_CALLBACK_PLUGINS",
        "ANSIBLE_RETRY_FILES_ENABLED",
        "ANSIBLE_HOST_KEY_CHECKING",
        "ANSIBLE_CACHE_PLUGIN",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
        "AWX_ISOLATED_DATA_DIR",
        "RUNNER_OMIT_EVENTS",
        "RUNNER_ONLY_FAILED_EVENTS",
    }
)


def child_env(
    base: Mapping[str, str],
    bin_dir: Path,
    playbook_dir: Path,
    local_temp: Path,
    strategy_plugins: Path | None = None,
) -> dict[str, str]:
    """The variables the bot sets for ansible-playbook; ``base`` is only read for PATH,
    HOME and the harmless pass-through names. ``strategy_plugins``: Mitogen's, whose
    ``mitogen_free`` then replaces the content's ``free`` strategy."""
    env = {
        # The ansible-playbook next to the bot's Python first (not a pyenv shim).
        "PATH": f"{bin_dir}:{base.get('PATH') or DEFAULT_PATH}",
        "HOME": base.get("HOME") or "/",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(local_temp),
        # ansible-runner appends its own callback dir to ours, and builds its awx_display
        # callback on the one named here (see callback_plugins/infrabot_default.py).
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_PLUGINS),
        "ANSIBLE_STDOUT_CALLBACK": "infrabot_default",
    }
    env.update({name: base[name] for name in _PASSED_THROUGH if base.get(name)})
    if strategy_plugins is not None:
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(strategy_plugins)
        env["ANSIBLE_STRATEGY"] = "mitogen_free"
    config = playbook_dir / "ansible.cfg"
    if config.is_file():
        env["ANSIBLE_CONFIG"] = str(config)
    return env


def runner_env(prepared: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """ansible-runner's prepared environment cut down to ours plus its own machinery."""
    return {k: str(v) for k, v in prepared.items() if k in ours or k in _RUNNER_KEYS}
