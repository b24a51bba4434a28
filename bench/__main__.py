"""``python -m bench [--quick]``: seed the scale data sets, measure, print a table, write latest.json."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

# The task queue picks its storage from the environment when webapp is imported: keep the bench's
# queued after-commit work out of the instance folder, before anything imports webapp.
WORKDIR = Path(os.environ.get("BENCH_WORKDIR", Path(tempfile.gettempdir()) / "neighbourly-bench"))
WORKDIR.mkdir(parents=True, exist_ok=True)
os.environ["NEIGHBOURLY_TASKS_DB"] = str(WORKDIR / "tasks.db")
os.environ.pop("NEIGHBOURLY_REDIS_URL", None)

from bench.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(WORKDIR))
