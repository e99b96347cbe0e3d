"""Where the runner gets the federation's inventory: the stack, or a file.

The stack output `inventory` is read by the Pulumi Automation API when it works, else by the
CLI's `pulumi stack output --json --show-secrets` (same data, fewer moving parts), else from a
file given with `--inventory`. Both stack paths need the Pulumi CLI; without it the user gets
one line pointing to `--inventory` instead of a traceback. Whatever the source, the data is
validated by `fedinfra.inventory.Inventory`, and a validation error becomes one line naming the
field, never echoing a value (it may be a private key).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fcapi.credentials import scrubbed_environ
from fcapi.files import UnreadableFile, read_bounded
from fedinfra.inventory import Inventory
from fedinfra.problems import Problem, one_line
from runner.errors import BadInput

OUTPUT_NAME = "inventory"
DEFAULT_TIMEOUT = 60.0
#: an inventory of hundreds of sites with their keys is well under this
MAX_INVENTORY_BYTES = 64 << 20


class InventorySourceError(BadInput):
    """The inventory cannot be had; the message is one line for the CLI."""


def load_inventory(
    *,
    stack: str | None = None,
    inventory_file: Path | None = None,
    work_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Inventory:
    """The inventory from `--inventory FILE` if given, else from stack `stack`.

    An explicit file wins: it is how a user without Pulumi, or with a saved copy, says so.
    """
    if inventory_file is not None:
        return parse_inventory(read_inventory_file(inventory_file), str(inventory_file))
    if stack is None:
        raise InventorySourceError("no inventory: give --stack NAME or --inventory FILE")
    return parse_inventory(read_stack_output(stack, work_dir, timeout), f"stack {stack}")


def read_stack_output(stack: str, work_dir: Path | None, timeout: float) -> Any:
    """The `inventory` output's value: Automation API first, the CLI if that fails."""
    if shutil.which("pulumi") is None:
        raise InventorySourceError(
            f"no Pulumi CLI on PATH to read stack {stack!r}; install it, or pass "
            "--inventory FILE (an inventory saved with `pulumi stack output --json "
            "--show-secrets inventory > FILE`)"
        )
    try:
        outputs = _automation_outputs(stack, work_dir, timeout)
    except InventorySourceError:
        raise
    except Exception:  # no Pulumi SDK (ImportError), or any Automation API failure: the CLI
        # reads the same output
        outputs = _cli_outputs(stack, work_dir, timeout)
    if OUTPUT_NAME not in outputs:
        names = ", ".join(sorted(outputs)) or "none"
        raise InventorySourceError(
            f"stack {stack!r} has no output {OUTPUT_NAME!r} (its outputs: {names}); "
            "run `pulumi up` first"
        )
    return _decode(outputs[OUTPUT_NAME], f"stack {stack}")


def _automation_outputs(stack: str, work_dir: Path | None, timeout: float) -> dict[str, Any]:
    """`select_stack(...).outputs()`, bounded by `timeout` (it has no timeout of its own).

    The SDK is imported here, not at the top: a runner-only install has no Pulumi SDK (it is
    the `infra` extra), and one that has it should not pay its import for `--inventory FILE`.
    """
    import pulumi.automation as auto

    def outputs() -> dict[str, Any]:
        selected = auto.select_stack(stack_name=stack, work_dir=str(work_dir or Path.cwd()))
        return {name: out.value for name, out in selected.outputs().items()}

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulumi-outputs")
    try:
        return pool.submit(outputs).result(timeout=timeout)
    except FutureTimeout:
        raise InventorySourceError(
            f"pulumi did not answer within {timeout:g} s while reading stack {stack!r}"
        ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _cli_outputs(stack: str, work_dir: Path | None, timeout: float) -> dict[str, Any]:
    command = ["pulumi", "--non-interactive", "stack", "output", "--json", "--show-secrets"]
    command += ["--stack", stack]
    try:
        done = subprocess.run(
            command,
            cwd=work_dir,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**scrubbed_environ(featurecloud_only=True), "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except subprocess.TimeoutExpired:
        raise InventorySourceError(
            f"`pulumi stack output` did not answer within {timeout:g} s for stack {stack!r}"
        ) from None
    except OSError as exc:
        raise InventorySourceError(f"cannot run pulumi: {exc.strerror}") from None
    if done.returncode != 0:
        last = _last_line(done.stderr) or f"exit status {done.returncode}"
        raise InventorySourceError(f"pulumi could not read stack {stack!r}: {last}")
    data = _decode(done.stdout.decode("utf-8", "replace"), "`pulumi stack output`")
    if not isinstance(data, dict):
        raise InventorySourceError("`pulumi stack output --json` did not print a JSON object")
    return data


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _decode(value: Any, where: str) -> Any:
    """Outputs may arrive as JSON text (a string output) rather than as an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InventorySourceError(
                f"{where}: the inventory is not JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:
            raise InventorySourceError(f"{where}: the inventory is nested too deeply") from None
    return value


def read_inventory_file(path: Path) -> Any:
    """The file's JSON; a FIFO, a device or a huge file is refused before it is read."""
    try:
        text = read_bounded(path, MAX_INVENTORY_BYTES).decode("utf-8")
    except UnreadableFile as exc:
        what = _INVENTORY_REFUSALS[exc.reason].format(e=exc)
        raise InventorySourceError(f"{path}: {what}") from None
    except UnicodeDecodeError:
        raise InventorySourceError(f"{path}: cannot read the inventory: not UTF-8 text") from None
    data = _decode(text, str(path))
    # a saved `pulumi stack output --json` (every output) holds the inventory under its name
    if isinstance(data, dict) and OUTPUT_NAME in data and "sites" not in data:
        data = _decode(data[OUTPUT_NAME], str(path))
    return data


_INVENTORY_REFUSALS = {
    "missing": "inventory file not found",
    "stat": "cannot read the inventory: {e.detail}",
    "read": "cannot read the inventory: {e.detail}",
    "folder": "cannot read the inventory: a folder",
    "special": "cannot read the inventory: not a regular file",
    "too_big": f"{{e.size}} bytes, over {MAX_INVENTORY_BYTES} for an inventory",
    "grew": f"{{e.size}} bytes, over {MAX_INVENTORY_BYTES} for an inventory",
}


def parse_inventory(data: Any, where: str) -> Inventory:
    """Validate; a failure names the field and what is wrong, never the value."""
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        raise InventorySourceError(one_line(exc, lambda p: _field(p, data, where))) from None
    except RecursionError:
        raise InventorySourceError(f"{where}: the inventory is nested too deeply") from None


def _field(problem: Problem, data: Any, where: str) -> str:
    """`<where>: inventory field sites[1](beta).ssh.port`: a site's index with its name."""
    loc = problem.loc
    field = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            if i > 0 and loc[i - 1] == "sites" and isinstance(data, dict):
                field += f"[{part}]" + _site_label(data, part)
            else:
                field += f"[{part}]"
        else:
            field += ("." if field else "") + str(part)
    return f"{where}: inventory field {field}" if field else f"{where}: inventory"


def _site_label(data: dict[str, Any], index: int) -> str:
    sites = data.get("sites")
    if isinstance(sites, list) and index < len(sites) and isinstance(sites[index], dict):
        name = sites[index].get("name")
        if isinstance(name, str) and len(name) <= 40 and name.isprintable():
            return f"({name})"
    return ""
