"""Prefect flows. Importing this package makes Prefect offline and quiet by
default (its home inside the project, git-ignored; no analytics; a generous
start-up timeout for the local ephemeral server on slow machines; INFO logs
to the API, only warnings on the console), unless the user's environment
already says otherwise."""

import os
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parents[1] / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# INFO reaches the Prefect API (the UI shows each run's logs); the console
# shows warnings and errors only, so a successful run prints one line.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
