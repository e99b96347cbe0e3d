"""The app catalogue: known FeatureCloud app ids/slugs, and the apps the emulator can run.

An emulated app is any module here (besides `base`) exposing `APP`, a `FederatedApp`
subclass; apps only known by id still appear in the app list but fail when run.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from fcapi.emulator.apps.base import FederatedApp


@dataclass(frozen=True)
class AppInfo:
    id: int
    slug: str
    name: str


#: apps of featurecloud.ai known from public code (reference §1); not emulated unless a module is
KNOWN: tuple[AppInfo, ...] = (
    AppInfo(66, "mean-app", "Mean"),
    AppInfo(50, "random-forest", "Random Forest"),
    AppInfo(85, "federated-svd", "Federated SVD"),
    AppInfo(45, "normalization", "Normalization"),
    AppInfo(52, "cross-validation", "Cross Validation"),
    AppInfo(48, "classification-evaluation", "Classification Evaluation"),
    AppInfo(57, "ada-boost", "AdaBoost"),
)


@cache
def emulated() -> dict[str, type[FederatedApp]]:
    """slug -> app class, for every module of this package that defines `APP`."""
    found: dict[str, type[FederatedApp]] = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        cls = getattr(module, "APP", None)
        if isinstance(cls, type) and issubclass(cls, FederatedApp):
            found[cls.slug] = cls
    return found


#: apps registered in this process (the website's `--app SLUG=ID`): app folders it does not ship
REGISTERED: dict[int, AppInfo] = {}


def register(info: AppInfo) -> None:
    """List an app under its id and slug (an app folder's, run by the controllers)."""
    REGISTERED[info.id] = info


def catalog() -> list[AppInfo]:
    """Every app of the app list, ordered by id; emulated apps override known ones, and
    registered ones both."""
    apps = {a.id: a for a in KNOWN}
    for cls in emulated().values():
        apps[cls.app_id] = AppInfo(cls.app_id, cls.slug, cls.name)
    taken = {a.slug for a in REGISTERED.values()}
    apps = {i: a for i, a in apps.items() if a.slug not in taken}
    apps.update(REGISTERED)
    return [apps[i] for i in sorted(apps)]


def by_id(app_id: int) -> AppInfo | None:
    return next((a for a in catalog() if a.id == app_id), None)
