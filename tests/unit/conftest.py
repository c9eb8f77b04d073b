"""Keep Hypothesis's caches out of the project root.

A `.hypothesis` folder in the root makes pytest warn that it skips it (the project replaces
`norecursedirs`), and `filterwarnings = error` turns that warning into a failed run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "dueflow-hypothesis")
