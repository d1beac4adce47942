"""The yamllint check, with the repository's own ``.yamllint`` (yamllint's default without one)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from yaml import YAMLError
from yamllint import linter
from yamllint.config import YamlLintConfig, YamlLintConfigError

from bot.model import Finding

CONFIG_FILES = (".yamllint", ".yamllint.yaml", ".yamllint.yml")


def yamllint_findings(
    root: Path,
    files: Iterable[str],
    *,
    parse_failed: Collection[str] = (),
    max_bytes: int | None = None,
) -> list[Finding]:
    """Problems in ``files`` (relative to ``root``). Syntax errors in ``parse_failed`` files are
    left out: the yaml check already reported them, as it reports files over ``max_bytes``
    (not linted: they were refused unread)."""
    config, findings = load_config(root)
    for rel in files:
        findings += lint_file(
            root, rel, config, parse_failed=rel in parse_failed, max_bytes=max_bytes
        )
    return findings


def lint_file(
    root: Path,
    rel: str,
    config: YamlLintConfig,
    *,
    parse_failed: bool = False,
    max_bytes: int | None = None,
) -> list[Finding]:
    """Problems in one file; its syntax errors are left out when ``parse_failed``."""
    if config.is_file_ignored(rel):
        return []
    path = root / rel
    try:
        if path.is_symlink() or (max_bytes is not None and path.stat().st_size > max_bytes):
            return []  # reported by the yaml check
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # reported by the yaml check
    try:
        problems = list(linter.run(text, config, rel))
    except YAMLError:
        return []  # yamllint's reader refuses a control character: so did the yaml check
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
        # A rule of yamllint itself crashed on this text (its indentation rule does on a
        # lone `}`): the file is reported, never the crash raised into the pipeline.
        if parse_failed:
            return []  # the yaml check already reported why this file is not YAML
        return [
            Finding(
                check="yamllint",
                file=rel,
                message=f"yamllint could not lint this file (it failed with {type(exc).__name__})",
            )
        ]
    return [
        Finding(
            check="yamllint",
            file=rel,
            line=problem.line,
            message=f"{problem.desc} [{problem.rule or 'syntax'}], column {problem.column}",
            severity="warning" if problem.level == "warning" else "error",
        )
        for problem in problems
        if problem.rule is not None or not parse_failed
    ]


def load_config(root: Path) -> tuple[YamlLintConfig, list[Finding]]:
    """The repository's config; a broken one is a finding and the default config is used."""
    for name in CONFIG_FILES:
        path = root / name
        if path.is_file():
            try:
                return YamlLintConfig(file=str(path)), []
            except (YamlLintConfigError, OSError, UnicodeDecodeError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                broken = Finding(
                    check="yamllint",
                    file=name,
                    message=f"cannot use this yamllint config ({reason}): linted with the default",
                )
                return YamlLintConfig("extends: default"), [broken]
    return YamlLintConfig("extends: default"), []
