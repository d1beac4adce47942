"""What an admin sets up around the repository, as ``infrabot doctor`` reads it.

Branch protection (``protect``, as an admin sets it in Settings → Branches), the GitHub
App installation's permissions (``app_permissions``), and the Actions workflows GitHub
sees on the default branch (the ``.github/workflows/*.yml`` files of the bare
repository).  The endpoints follow GitHub's rules that the doctor must cope with:
reading a branch's protection needs admin, or Administration: read for the App (anyone
else gets 404, as on GitHub, and an
unprotected branch answers 404 "Branch not protected"); the branch itself shows anyone
with read whether it is protected and which status checks it requires, but not the
review rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fakes.github.rest import Answer, Json, Request, Rest, _id, _now

_FULL_APP = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "statuses": "write",
    "actions": "write",
    "metadata": "read",
}


@dataclass
class Protection:
    contexts: tuple[str, ...] = ()
    approvals: int | None = None
    """Required approving reviews; None: no review rule at all."""
    enforce_admins: bool = False


class RepoSettings:
    """Mixed into ``FakeGitHub``: branch protection, the App's permissions, workflows."""

    app_permissions: dict[str, str]
    protections: dict[str, Protection]

    def _init_settings(self) -> None:
        self.app_permissions = dict(_FULL_APP)
        self.protections = {}

    def protect(
        self,
        branch: str,
        contexts: tuple[str, ...] = (),
        approvals: int | None = None,
        *,
        enforce_admins: bool = False,
    ) -> None:
        """Protect ``branch`` (what an admin does in Settings → Branches)."""
        self.protections[branch] = Protection(tuple(contexts), approvals, enforce_admins)

    # -- JSON builders -------------------------------------------------------------------

    def _protection(self: Any, branch: str, rule: Protection) -> Json:
        url = f"{self._api}/branches/{branch}/protection"
        checks = {
            "url": f"{url}/required_status_checks",
            "strict": False,
            "contexts": list(rule.contexts),
            "checks": [{"context": c, "app_id": None} for c in rule.contexts],
        }
        out: dict[str, Any] = {
            "url": url,
            "enabled": True,
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": rule.enforce_admins},
        }
        if rule.contexts:
            out["required_status_checks"] = checks
        if rule.approvals is not None:
            out["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": True,
                "require_code_owner_reviews": False,
                "required_approving_review_count": rule.approvals,
            }
        return out

    # -- handlers ------------------------------------------------------------------------

    def get_branch(self: Any, req: Request, branch: str) -> Answer:
        if not self._may(req.user, "read"):
            return self._not_found()
        sha = self.repo.tip(branch)
        if sha is None:
            return 404, {"message": "Branch not found"}, {}
        rule = self.protections.get(branch)
        url = f"{self._api}/branches/{branch}"
        protection: dict[str, Any] = {"enabled": rule is not None}
        if rule is not None and rule.contexts:  # what a reader sees: the checks, not reviews
            protection["required_status_checks"] = {
                "enforcement_level": "non_admins",
                "contexts": list(rule.contexts),
                "checks": [{"context": c, "app_id": None} for c in rule.contexts],
            }
        data = {
            "name": branch,
            "commit": {"sha": sha, "url": f"{self._api}/commits/{sha}"},
            "_links": {
                "html": f"https://github.invalid/{self.full_name}/tree/{branch}",
                "self": url,
            },
            "protected": rule is not None,
            "protection": protection,
            "protection_url": f"{url}/protection",
        }
        return 200, data, {}

    def get_protection(self: Any, req: Request, branch: str) -> Answer:
        admin_read = self.app_permissions.get("administration") in ("read", "write")
        if not (self._may(req.user, "admin") or (req.user == self.bot_login and admin_read)):
            return self._not_found()
        rule = self.protections.get(branch)
        if rule is None:
            return 404, {"message": "Branch not protected"}, {}
        return 200, self._protection(branch, rule), {}

    def get_installation(self: Any, req: Request, installation: str) -> Answer:
        if req.user != "app":
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        if int(installation) != self.installation_id:
            return self._not_found()
        data = {
            "id": self.installation_id,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": _id(self.owner),
            "target_type": "Organization",
            "account": self._user(self.owner),
            "repository_selection": "selected",
            "permissions": dict(self.app_permissions),
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
            "created_at": _now(),
            "updated_at": _now(),
            "single_file_name": None,
            "suspended_by": None,
            "suspended_at": None,
        }
        return 200, data, {}

    def list_workflows(self: Any, req: Request) -> Answer:
        if not self._may(req.user, "read"):
            return self._not_found()
        listed = self.repo.git(
            "ls-tree",
            "--name-only",
            f"refs/heads/{self.default_branch}:.github/workflows/",
            check=False,
        )
        names = [n for n in listed.stdout.split() if n.endswith((".yml", ".yaml"))]
        workflows = [
            {
                "id": _id(name),
                "node_id": f"W_{_id(name)}",
                "name": name.rsplit(".", 1)[0],
                "path": f".github/workflows/{name}",
                "state": "active",
                "url": f"{self._api}/actions/workflows/{_id(name)}",
                "html_url": f"https://github.invalid/{self.full_name}/blob/main/{name}",
                "badge_url": f"https://github.invalid/{self.full_name}/workflows/badge.svg",
                "created_at": _now(),
                "updated_at": _now(),
            }
            for name in names
        ]
        return 200, {"total_count": len(workflows), "workflows": workflows}, {}


SETTINGS_ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    ("GET", r"/app/installations/(\d+)", RepoSettings.get_installation),
    ("GET", r"{repo}/actions/workflows", RepoSettings.list_workflows),
    ("GET", r"{repo}/branches/([^/]+)", RepoSettings.get_branch),
    ("GET", r"{repo}/branches/([^/]+)/protection", RepoSettings.get_protection),
]

__all__ = ["SETTINGS_ROUTES", "Protection", "RepoSettings", "Rest"]
