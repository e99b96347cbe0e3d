"""Site locks: cells running at once never share a site.

A site's controller, data folder and FeatureCloud user serve one project at a time, so a cell
holds its sites from before its run starts until it ends. Waiting is bounded by the cells
holding the sites, each of which ends by its own deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class SitePool:
    """The sites a study's cells take from, in order; each held by one cell at a time."""

    def __init__(self, names: Sequence[str]) -> None:
        self._order = list(names)
        self._free = set(names)
        self._changed = asyncio.Condition()

    async def take(self, count: int, wanted: Sequence[str] | None = None) -> list[str]:
        """`count` free sites (the first free ones), or exactly `wanted` (a resumed run's)."""
        if wanted is not None and not set(wanted) <= set(self._order):
            raise ValueError(f"sites {sorted(set(wanted) - set(self._order))} are not in the pool")
        if count > len(self._order):
            raise ValueError(f"{count} sites asked of a pool of {len(self._order)}")

        def pick() -> list[str] | None:
            if wanted is not None:
                return list(wanted) if set(wanted) <= self._free else None
            free = [n for n in self._order if n in self._free]
            return free[:count] if len(free) >= count else None

        async with self._changed:
            chosen = pick()
            while chosen is None:
                await self._changed.wait()
                chosen = pick()
            self._free -= set(chosen)
            return chosen

    async def give_back(self, names: Sequence[str]) -> None:
        async with self._changed:
            self._free |= set(names)
            self._changed.notify_all()
