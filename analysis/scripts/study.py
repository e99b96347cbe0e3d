"""Write one study file for `python -m runner sweep` from the workflow's config.

Run by Snakemake (`script:`), which passes `snakemake.wildcards`, `.params` and `.output`.
The regression reads the table (rows under a header); the mean reads the target column, each
site's share as one row of values, as fedstack's mean app expects.
"""

import json
from pathlib import Path
from typing import Any

STUDIES: dict[str, dict[str, Any]] = {
    "regression": {
        "app": "linear-regression",
        "data": {"table": "diabetes.csv", "header": True, "layout": "rows"},
    },
    "mean": {
        "app": "mean-app",
        "data": {"table": "diabetes-y.csv", "header": False, "layout": "values"},
    },
}


def value(v: object) -> str:
    return json.dumps(v)


def study_text(name: str, settings: dict[str, Any], data_dir: Path) -> str:
    spec = STUDIES[name]
    lines = [
        f"name = {value(name)}",
        f"apps = [{value(spec['app'])}]",
        f"sites = {value(list(settings['sites']))}",
        f"splits = {value(list(settings['splits']))}",
        f"repeats = {int(settings['repeats'])}",
        f"parallel = {int(settings['parallel'])}",
        f"deadline = {value(str(settings['deadline']))}",
        "centralized = true",
        "",
        "[data]",
        f"table = {value(str((data_dir / spec['data']['table']).resolve()))}",
        f"header = {'true' if spec['data']['header'] else 'false'}",
        f"layout = {value(spec['data']['layout'])}",
    ]
    target = settings["target"]
    if target != "demo":
        lines += ["", "[target]"]
        lines += [f"{k} = {value(str(v))}" for k, v in target.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    sm: Any = globals()["snakemake"]
    out = Path(sm.output[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    data_dir = Path(sm.input[0]).parent
    out.write_text(study_text(sm.wildcards.study, dict(sm.params.settings), data_dir))


main()
