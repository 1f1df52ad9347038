"""The site model: YAML schema, loading with line-accurate errors, the dependency graph.

    from safety_nexus.site import load_file
    site = load_file("sites/demo-city.yaml")

The graph lives in `safety_nexus.site.graph` (imported on demand: it pulls in networkx).
"""

from __future__ import annotations

from safety_nexus.site.load import load, load_file
from safety_nexus.site.schema import Site

__all__ = ["Site", "load", "load_file"]
