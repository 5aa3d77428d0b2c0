"""Fixtures several test modules share."""

import sys

import pytest

from sslbench.registry import REGISTRIES


@pytest.fixture
def unregister():
    """Names a test registers in this process (in any registry) are removed again, so later tests see the
    built-ins; the plugin files it loaded are forgotten."""
    names: list[str] = []
    modules = set(sys.modules)
    yield names
    for name in names:
        for registry in REGISTRIES.values():
            registry.module_dict.pop(name, None)
    for module in set(sys.modules) - modules:  # plugin files load once per process: let a later test load them
        if module.startswith("sslbench_plugin_"):
            del sys.modules[module]
