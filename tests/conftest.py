"""Fixtures several test modules share."""

import pytest

from sslbench.registry import PRETEXTS


@pytest.fixture
def unregister():
    """Names a test registers in this process are removed again, so later tests see the built-ins."""
    names: list[str] = []
    yield names
    for name in names:
        PRETEXTS.module_dict.pop(name, None)
