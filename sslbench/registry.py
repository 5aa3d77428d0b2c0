"""Component registries and plugin loading.

Every interchangeable part is registered by name in one of these mmengine registries and built from
a config dict (``dict(type="InstanceAware", ...)``). Plugins register into the same registries. Each
registry imports the modules that hold its built-ins itself (mmengine ``locations``) the first time a
component is looked up, so no caller has to load them first.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

from mmengine.registry import Registry

from sslbench.errors import ConfigError, UnknownComponentError

PRETEXTS = Registry("pretext", scope="sslbench", locations=["sslbench.pretext"])
BACKBONES = Registry("backbone", scope="sslbench", locations=["sslbench.models"])
HEADS = Registry("head", scope="sslbench", locations=["sslbench.models"])
DATASETS = Registry("dataset", scope="sslbench", locations=["sslbench.data"])

REGISTRIES = {"pretexts": PRETEXTS, "backbones": BACKBONES, "heads": HEADS, "datasets": DATASETS}
PLUGIN_GROUP = "sslbench.plugins"


def closest_hint(name: str, choices) -> str:
    match = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{match[0]}'?" if match else ""


def registered(registry: Registry) -> dict[str, type]:
    """Name -> class of everything in ``registry``: the built-ins (imported on first use) and plugins."""
    registry.import_from_location()
    return registry.module_dict


def registered_class(registry: Registry, kind) -> type:
    """The class (or function) registered in ``registry`` as ``kind``; an unknown one names the closest."""
    found = registry.get(kind) if isinstance(kind, str) else None
    if found is None:
        known = sorted(registered(registry))
        raise UnknownComponentError(
            f"unknown {registry.name} '{kind}'.{closest_hint(str(kind), known)} "
            f"Registered: {', '.join(known)}.")
    return found


def build(registry: Registry, cfg: dict, **extra):
    """Build ``cfg`` from ``registry``; an unknown type names the closest registered one."""
    registered_class(registry, cfg.get("type"))
    try:
        return registry.build(dict(cfg, **extra))
    except (TypeError, ValueError) as exc:  # the component refused its arguments
        raise ConfigError(f"invalid {registry.name} config {dict(cfg)}: {exc}") from None


def load_plugin(spec: str) -> None:
    """Import a plugin given as ``path/to/file.py`` or ``package.module``; its decorators register it.
    A plugin already imported in this process is not imported again (it would register its names twice)."""
    try:
        if spec.endswith(".py") or Path(spec).is_file():
            path = Path(spec)
            if not path.is_file():
                raise ConfigError(f"plugin file {path} does not exist: check the --plugin path.")
            name = f"sslbench_plugin_{path.stem}"
            loaded = sys.modules.get(name)
            if loaded is not None and Path(loaded.__file__).resolve() == path.resolve():
                return
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]  # not loaded: a later load tries again
                raise
        else:
            importlib.import_module(spec)
    except ConfigError:
        raise
    except Exception as exc:  # asked for explicitly: stop, but with one line naming the plugin
        raise ConfigError(f"plugin '{spec}' failed to load ({type(exc).__name__}: {exc}); fix it or drop "
                          "--plugin (a name registered twice means it is also installed as a package).") from None


def load_entry_point_plugins() -> list[str]:
    """Load every installed ``sslbench.plugins`` entry point; a broken one warns and is skipped."""
    loaded = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a third party's bug must not take the built-ins down
            warnings.warn(f"sslbench plugin '{ep.name}' ({ep.value}) failed to load and is skipped: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded


def load_plugins(specs: list[str]) -> list[str]:
    """The one place plugins load: the built-ins first (a plugin may look one up in ``module_dict`` as it
    is imported, which the registries' lazy ``locations`` would leave empty), then the installed plugins
    (a broken one warns), then ``specs`` (--plugin: a broken one is an error). Returns the installed ones."""
    for registry in REGISTRIES.values():
        registry.import_from_location()
    installed = load_entry_point_plugins()
    for spec in specs:
        load_plugin(spec)
    return installed
