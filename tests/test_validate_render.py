"""The validation report as markdown: snapshot and bounds."""

from __future__ import annotations

from gfm import visible, walk

from bot.model import Finding, ValidationReport
from bot.validate.render import render_report_markdown

CHECKS = ("yaml", "yamllint", "schema", "pydantic", "references", "policy", "paths")

REPORT = ValidationReport(
    checks=CHECKS,
    findings=(
        Finding(
            check="yamllint",
            file="infra/state/sites/a.yaml",
            line=7,
            message="missing starting space in comment [comments], column 15",
            severity="warning",
        ),
        Finding(
            check="schema",
            file="infra/state/containers/a.yaml",
            line=9,
            path="$.memory",
            message="'lots' is not of type 'integer'",
        ),
        Finding(
            check="policy",
            file="infra/state/sites/a.yaml",
            path="$.owner",
            message="Site 'a' has no owner: policy requires one (add `owner: <team>`)\nor else | x",
        ),
    ),
)

SNAPSHOT = """\
### Validation ❌ failed (2 errors, 1 warning)

✅ yaml · ⚠️ yamllint · ❌ schema · ✅ pydantic · ✅ references · ❌ policy · ✅ paths

| | check | location | message |
| --- | --- | --- | --- |
| ⚠️ | yamllint | `infra/state/sites/a.yaml:7` | missing starting space in comment \\[comments\\], column 15 |
| ❌ | schema | `infra/state/containers/a.yaml:9 $.memory` | 'lots' is not of type 'integer' |
| ❌ | policy | `infra/state/sites/a.yaml $.owner` | Site 'a' has no owner: policy requires one (add \\`owner: &lt;team&gt;\\`) or else \\| x |
"""  # noqa: E501 - a snapshot is compared verbatim


def test_on_github_the_message_reads_as_written() -> None:
    md = render_report_markdown(REPORT)
    shown = visible(md)
    assert "(add `owner: <team>`) or else | x" in shown
    assert "[comments]" in shown and "&lt;" not in shown
    assert walk(md).tags.count("tr") == 4


def test_a_hostile_value_stays_in_its_cell() -> None:
    finding = Finding(
        check="schema",
        file="infra/state/sites/x|y.yaml",
        path="$.domain",
        message="'<h1>✅ approved</h1> | [x](https://evil.example) `' is not a 'hostname'",
    )
    md = render_report_markdown(ValidationReport(checks=("schema",), findings=(finding,)))
    walker = walk(md)
    assert walker.tags.count("td") == 4 and "h1" not in walker.tags and "a" not in walker.tags
    assert "<h1>✅ approved</h1> | [x](https://evil.example) `" in visible(md)


def test_snapshot() -> None:
    assert render_report_markdown(REPORT) == SNAPSHOT


def test_clean_report() -> None:
    text = render_report_markdown(ValidationReport(checks=CHECKS[:2]))
    assert text == "### Validation ✅ passed\n\n✅ yaml · ✅ yamllint\n"


def test_warnings_alone_pass() -> None:
    report = ValidationReport(checks=CHECKS[:2], findings=REPORT.findings[:1])
    assert render_report_markdown(report).startswith("### Validation ✅ passed (1 warning)\n")


def test_long_reports_are_bounded() -> None:
    findings = tuple(
        Finding(check="schema", file=f"infra/state/f{i}.yaml", message=f"problem {i}")
        for i in range(63)
    )
    text = render_report_markdown(ValidationReport(checks=("schema",), findings=findings))
    rows = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert len(rows) == 50
    assert "problem 49" in text and "problem 50" not in text
    assert text.endswith("… and 13 more\n")
    assert text.startswith("### Validation ❌ failed (63 errors)")
