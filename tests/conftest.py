"""Shared fixtures.

Prefect runs offline and quietly: its home is a temporary folder, analytics
are off, and every test that needs an API server shares ONE session-wide
``prefect_test_harness`` (starting it costs seconds to a minute on 2 cores, so
only the tests that ask for the ``prefect`` fixture pay for it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="cmisc-prefect-home-")
# Removed when pytest exits, so repeated runs do not fill the temporary disk.
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    """The project's read-only shared folder: $CMISC_SHARED_DIR, else ../shared
    beside the checkout, else /work/shared (where CI's clean clone may live elsewhere)."""
    for candidate in (os.environ.get("CMISC_SHARED_DIR"), REPO.parent / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "realdata").is_dir():
            return Path(candidate)
    return REPO.parent / "shared"


SHARED = _shared()
REALDATA = SHARED / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The small real files of ../shared/realdata (Wikipedia, COCO, a broken JPEG)."""
    if not REALDATA.exists():
        pytest.skip(f"{REALDATA} is not present")
    return REALDATA


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """The sample world at size ``tiny``, generated once per session."""
    from cmisc_model.sample_world.world import SampleConfig, generate

    out = tmp_path_factory.mktemp("sample_world")
    generate(out, seed=7, size="tiny", cfg=SampleConfig(), force=True)
    return out


@pytest.fixture(scope="session")
def prefect():
    """One Prefect API server (temporary SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
