"""Discovery: a source with ``discover = true`` runs as one child source per Page or
Instagram account its token can see (see :mod:`collectord.discovery.find` for how they are
found and named, :mod:`collectord.discovery.runner` for when)."""

from collectord.discovery.find import Found, child_name, children, matches, select
from collectord.discovery.runner import Discoverer

__all__ = ["Discoverer", "Found", "child_name", "children", "matches", "select"]
