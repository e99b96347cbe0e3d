"""How a site's part of a run ends other than by finishing: both app kinds raise these."""

from __future__ import annotations


class Stopped(Exception):
    """The project left this run (shutdown, reset): nothing to report."""


class AppFailed(Exception):
    """The step's app failed; the message is what the project's error shows."""
