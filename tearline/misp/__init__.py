"""The MISP bridge: a member's MISP events in, and what the member may read out as MISP events.

It runs on the member's machine (tearline.cli.misp) and reaches the hub over TAXII like any of the member's
tools, so everything it writes passes the compact's scope and TLP rules, and everything it reads the gate.
The conversion is misp-stix's, MISP's own converter; what is written here is what misp-stix leaves to its
caller: reading MISP's files and tags (``events``), TLP and distribution as MISP users mean them, and the
link to the compact's actor (``push``), and the classification, incidents and TLP of a member's copy on the
way back (``pull``).
"""

from .events import read_events, tag_level
from .pull import Pulled, event_uuid, marking_refs, misp_made, to_misp
from .push import Converted, actor_names, to_stix

__all__ = ["Converted", "Pulled", "actor_names", "event_uuid", "marking_refs", "misp_made", "read_events",
           "tag_level", "to_misp", "to_stix"]
