"""Bad input: exit 1, a message naming file, line and field, no traceback, nothing sent.

One case file per scenario in tests/cases/bad_input/: the configuration files to write and the
error lines expected (`__P__` stands for the test's unique name prefix), and optionally the
commands that report them (all of validate, plan and apply unless it says).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import all_objects, assert_ok

CASES = sorted((Path(__file__).parent.parent / "cases" / "bad_input").glob("*.yaml"))


def live_names(api, prefix: str) -> list[str]:
    paths = ("work_pools/filter", "variables/filter", "block_documents/filter", "deployments/filter", "automations/filter")
    return [o["name"] for path in paths for o in all_objects(api, path) if (o.get("name") or "").startswith(prefix)]


@pytest.mark.parametrize("case_file", CASES, ids=[c.stem for c in CASES])
def test_bad_input_is_reported_and_nothing_is_applied(case_file, workspace, prefix, api):
    case = YAML(typ="safe").load(case_file.read_text())
    for name, text in case["files"].items():
        workspace.write(name, text.replace("__P__", prefix))
    expected = [line.replace("__P__", prefix) for line in case["errors"]]

    # A case about what only the server knows (a block type's schema) lists the commands that check it.
    commands = [c for c in (["validate"], ["plan"], ["apply", "--auto-approve"]) if c[0] in case.get("commands", [c[0]])]
    for command in commands:
        result = assert_ok(workspace.run(*command, str(workspace.directory)), 1)
        for line in expected:
            assert line in result.stderr, f"{command[0]}: expected {line!r} in:\n{result.stderr}"
        assert "Traceback" not in result.output

    assert not workspace.state_path.exists()
    assert live_names(api, prefix) == []
