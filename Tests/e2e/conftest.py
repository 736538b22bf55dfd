import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serving import make_head  # noqa: E402


@pytest.fixture(scope="session")
def head(tmp_path_factory):
    return make_head(tmp_path_factory.mktemp("head"))
