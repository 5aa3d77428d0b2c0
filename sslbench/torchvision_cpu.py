"""Make ``import torchvision`` work beside a CPU-only torch.

The pinned torchvision wheel ships a ``_C.so`` linked against CUDA libraries. On a machine without
them the library fails to load, and torchvision's own fake-kernel registrations then abort the import
with "operator torchvision::nms does not exist". Declaring the two op schemas it registers against
lets the import succeed; the ops themselves are never called by sslbench. Where ``_C.so`` loads this
module does nothing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library: torch.library.Library | None = None  # must stay referenced, or the schemas are dropped


def _has_nms() -> bool:
    try:
        torch.ops.torchvision.nms
    except (AttributeError, RuntimeError):
        return False
    return True


def _native_ops_load() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision at all: nothing to repair
    for folder in spec.submodule_search_locations:
        for lib in Path(folder).glob("_C*.so"):
            try:
                torch.ops.load_library(str(lib))
            except OSError:
                return False
            return _has_nms()
    return False


def ensure_torchvision_ops() -> bool:
    """Declare torchvision's op schemas when its compiled ops cannot load; True if it declared them."""
    global _library
    if _library is not None or _has_nms() or _native_ops_load():
        return False
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _library.define(schema)
    return True


ensure_torchvision_ops()
