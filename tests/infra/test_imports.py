"""The runner reads the inventory without the `infra` extra: `fedinfra`, `fedinfra.inventory`
and `fedinfra.problems` load neither the Pulumi SDK nor PyYAML."""

from __future__ import annotations

import subprocess
import sys

from tests.infra.harness import ROOT

BLOCK = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("yaml", "pulumi") or name.startswith("pulumi_"):
            raise ImportError(f"{name} is in the infra extra")
        return None

sys.meta_path.insert(0, Block())
import fedinfra, fedinfra.inventory, fedinfra.problems
print(sorted(m for m in sys.modules if m.startswith("fedinfra")))
"""


def test_inventory_side_imports_no_pulumi_and_no_yaml():
    done = subprocess.run(
        [sys.executable, "-c", BLOCK], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['fedinfra',", "'fedinfra.inventory',", "'fedinfra.problems']"]
