"""The one parser of queue names (`ml.training`, `root.ml.training`), for the spec model and the queue tree.

Its own module so that the job model can validate `spec.queue` at import time
without importing the queue tree (which imports the model).
"""

from __future__ import annotations

import re

ROOT = "root"  # YuniKorn's implicit top of the tree; never a queue of its own here
MAX_DEPTH = 8
_SEGMENT = re.compile(r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")


class QueueNameError(ValueError):
    """A queue name bigk cannot use (the message says why, in one line)."""


def queue_name(text: object) -> str:
    """The bigk name of a queue written as `ml.training`, `root.ml.training` or ` ML.Training `.

    Segments are lower-cased DNS-label-like words (letters, digits, '-', '_'),
    joined by dots; a leading `root.` (YuniKorn) is dropped, so `root.default`
    is `default`. Raises QueueNameError for anything else.
    """
    if not isinstance(text, str):
        raise QueueNameError(f"a queue name is text, got {text!r}")
    name = text.strip().lower()
    if name == ROOT:
        raise QueueNameError("'root' is the top of the queue tree, not a queue; name a queue below it")
    if name.startswith(ROOT + "."):
        name = name[len(ROOT) + 1:]
    parts = name.split(".")
    if not name or len(name) > 253:
        raise QueueNameError(f"{text!r} is not a queue name (1 to 253 characters)")
    for part in parts:
        if not _SEGMENT.match(part) or len(part) > 63:
            raise QueueNameError(
                f"{text!r} is not a queue name: each dot-separated part uses lower-case letters, digits, '-' and "
                "'_', starting and ending with a letter or digit")
    if len(parts) > MAX_DEPTH:
        raise QueueNameError(f"{text!r} is nested {len(parts)} deep; queues nest at most {MAX_DEPTH} deep")
    return name
