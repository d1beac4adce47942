"""yamllint's own crashes are findings, never exceptions in the pipeline."""

from __future__ import annotations

from pathlib import Path

from yamllint.config import YamlLintConfig

from bot.validate.lint import lint_file

CONFIG = YamlLintConfig("extends: default")


def test_a_crash_inside_yamllint_is_one_finding(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("}\n")  # yamllint's indentation rule raises TypeError
    (finding,) = lint_file(tmp_path, "bad.yaml", CONFIG)
    assert finding.check == "yamllint" and finding.file == "bad.yaml"
    assert "could not lint" in finding.message and "TypeError" in finding.message
    assert finding.severity == "error"


def test_a_crash_on_a_file_the_yaml_check_refused_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("}\n")
    assert lint_file(tmp_path, "bad.yaml", CONFIG, parse_failed=True) == []


def test_a_clean_file_has_no_findings(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("---\nname: ok\n")
    assert lint_file(tmp_path, "ok.yaml", CONFIG) == []
