"""The README's settings reference is generated from the settings models; it must match them."""

from __future__ import annotations

from bridge.settings_reference import BEGIN, END, markdown_reference
from tests.conftest import ROOT


def test_settings_reference_matches_the_models() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == markdown_reference(), (
        "README settings reference is stale: regenerate it with "
        "`python -m bridge.settings_reference`"
    )


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/pip install . && .venv/bin/bridge demo" in readme
    assert "scripts/run-tests" in readme
    assert "scripts/run-tests" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
