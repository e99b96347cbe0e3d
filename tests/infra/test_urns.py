"""Existing stacks see no resource replaced: both committed stacks declare exactly the URNs they
declared before fedinfra's backends moved into `fedinfra/backends/` (captured from that code
into urns_sim.txt and urns_cloud.txt). A URN holds the type token, the name and the parent
chain, so a changed one means Pulumi would delete and re-create the resource."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest

from tests.infra.harness import ROOT, fake_home, run_program, setup, stack_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HERE = Path(__file__).parent
CIDR = "198.51.100.7/32"


def stack_urns(stack: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Every URN `__main__.py` registers for the committed stack file (AWS with a CIDR set)."""
    fake_home(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(pulumi, "export", lambda name, value: None)
    cfg, secret_keys = stack_config(stack)
    if stack == "cloud":
        cfg["fedstack:sshAllowedCidr"] = CIDR
    h = setup(stack, cfg, secret_keys)
    run_program(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    return sorted(u for u in h.monitor.resources if "::pulumi:pulumi:Stack::" not in u)


@pytest.mark.parametrize("stack", ["sim", "cloud"])
def test_committed_stacks_keep_their_urns(stack, monkeypatch, tmp_path):
    expected = (HERE / f"urns_{stack}.txt").read_text().split()
    assert stack_urns(stack, monkeypatch, tmp_path) == expected
