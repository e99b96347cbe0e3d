"""What a series of runs on one project carries from one run to the next.

A repetition (`--repeat N`) runs the same workflow on the same project and the same sites, so
what the website told an earlier repetition about a site, and what was written to its host
then, still holds: fetching and writing it again costs a request and two commands per site.
Only the series' own runs share one `Carried`; a run on its own starts with nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fcapi.models import Site


@dataclass
class Carried:
    #: the site each controller data dir was told it serves, by (site name, data dir)
    site_info: dict[tuple[str, str], Site] = field(default_factory=dict)
