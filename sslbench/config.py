"""Resolve names ("instance_aware", "smoke", "resnet101") to mmengine config files under registry/
and compose them into one run config."""

from __future__ import annotations

import ast
import inspect
from importlib.resources import files
from pathlib import Path

from mmengine.config import Config

from sslbench.errors import ConfigError, UnknownComponentError
from sslbench.registry import BACKBONES, HEADS, PRETEXTS, closest_hint, registered

#: the ``engine`` section every run config gets (how fast a run goes, not what it computes; what each
#: switch does: ``engine.accel``); presets and ``--set engine.X=...`` override it
ENGINE_DEFAULTS = dict(amp="auto", channels_last="auto", tf32="auto", fused_optimizer="auto",
                       compile=False, data_on_device="auto", loader_workers=4)
#: the switches "auto" turns on for CUDA (bf16 and channels_last also for a CPU with native bf16: engine.accel)
ENGINE_SWITCHES = ("amp", "channels_last", "tf32", "fused_optimizer")


def config_root() -> Path:
    return Path(str(files("sslbench._configs")))


def available(kind: str) -> list[str]:
    return sorted(p.stem for p in (config_root() / kind).glob("*.py") if not p.stem.startswith("_"))


def load_component(kind: str, name: str) -> Config:
    path = config_root() / kind / f"{name}.py"
    if not path.is_file():
        known = available(kind)
        raise UnknownComponentError(f"unknown {kind} '{name}'.{closest_hint(name, known)} "
                                    f"Available: {', '.join(known)}.")
    return Config.fromfile(str(path))


#: the registry each kind chosen by name on the command line is built from
_REGISTRY_OF = {"pretext": PRETEXTS, "backbone": BACKBONES, "head": HEADS}


def component_names(kind: str) -> dict[str, str]:
    """Names usable for ``kind`` (pretext, backbone, head) -> one-line description: the config files
    under ``registry/<kind>/``, plus plugin classes registered without one (built with their defaults)."""
    names = {name: load_component(kind, name).get("description", "") for name in available(kind)}
    configured_types = {load_component(kind, n)[kind]["type"] for n in names}
    for type_name, cls in registered(_REGISTRY_OF[kind]).items():
        if type_name not in configured_types:
            names.setdefault(type_name, (inspect.getdoc(cls) or "").split("\n")[0])
    return names


def component_config(kind: str, name: str) -> dict:
    """The config dict of the ``kind`` named ``name``: its config file, else a registered class of that
    name, else (backbones) any segmentation-models-pytorch encoder, timm's as ``tu-<model>``, or timm ViT."""
    if (config_root() / kind / f"{name}.py").is_file():
        return dict(load_component(kind, name)[kind])
    if _REGISTRY_OF[kind].get(name) is not None:
        return {"type": name}
    from sslbench.models.backbones import named_backbone  # here: smp and timm load only when needed

    if kind == "backbone" and (found := named_backbone(name)):
        return found
    known = sorted(component_names(kind))
    hint = " Any segmentation-models-pytorch encoder works too (timm's as tu-NAME)." if kind == "backbone" else ""
    raise UnknownComponentError(f"unknown {kind} '{name}'.{closest_hint(name, known)} "
                                f"Available: {', '.join(known)}.{hint}")


def _accepted(cls, overrides: dict) -> dict:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in overrides.items() if k in params}


def paper_value(strategy: str, metric: str = "aji") -> float | None:
    """The paper's number for a strategy at 100 % labels (Tables 2 and 3), if it printed one."""
    for suite in ("table2", "table3"):
        paper = load_component("suite", suite).get("paper", {})
        if paper.get("metric") == metric and strategy in paper.get("values", {}):
            return paper["values"][strategy]
    return None


def preset_backbone(preset: str, backbone: str | None = None) -> str:
    """``backbone`` if given, else the preset's (cpu: resnet34), else the paper's resnet101."""
    return backbone or load_component("preset", preset).get("backbone", "resnet101")


def resolve_run_config(pretext: str, preset: str = "smoke", backbone: str | None = None, head: str | None = None,
                       seed: int = 0, device: str = "auto", data: str | None = None, test_data: str | None = None,
                       unlabeled: str | None = None, overrides: list[str] | None = None,
                       allow_synthetic: bool = False) -> Config:
    """One flat config for a run; ``preset`` sizes override the pretext's where it accepts them,
    then ``overrides`` ("finetune.steps=200", "pretext.weights=/path/r101.pth") override anything.
    ``backbone`` None: the preset's ``backbone``, else resnet101 (the paper's). A preset marked
    ``real_data`` (mini, paper) refuses the synthetic default unless ``allow_synthetic``."""
    cfg = load_component("preset", preset)
    backbone = preset_backbone(preset, backbone)
    if data is None and cfg.get("real_data") and not allow_synthetic:
        raise ConfigError(f"preset {preset} is sized for real images: pass --data DIR (e.g. MoNuSeg's training "
                          "images); to run it on the built-in synthetic data anyway, add --allow-synthetic.")
    from sslbench.models import check_head_fits, default_head

    backbone_cfg = component_config("backbone", backbone)
    head_cfg = component_config("head", head or default_head(backbone_cfg))
    check_head_fits(backbone_cfg, head_cfg)
    pretext_cfg = component_config("pretext", pretext)
    cls = PRETEXTS.get(pretext_cfg["type"])
    pretext_cfg.update(_accepted(cls, dict(cfg.get("pretext_overrides", {}))))
    merged = dict(
        name=pretext, preset=preset, seed=seed, device=device,
        pretext=pretext_cfg,
        backbone=backbone_cfg, head=head_cfg,
        data=dict(cfg.data) if data is None else dict(type="path", path=str(data)),
        test_data=test_data, unlabeled=unlabeled,
        split=dict(cfg.split), pretrain=dict(cfg.pretrain), finetune=dict(cfg.finetune),
        evaluation=dict(cfg.evaluation),
        engine={**ENGINE_DEFAULTS, **cfg.get("engine", {})},
    )
    cfg = Config(merged)
    cfg.merge_from_dict(parse_overrides(overrides or []))
    validate(cfg)
    return cfg


def parse_overrides(items: list[str]) -> dict:
    """["a.b=3", "c=x"] -> {"a.b": 3, "c": "x"}; values are Python literals where they parse as one."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. finetune.steps=200), got '{item}'.")
        try:
            parsed[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value
    return parsed


def validate(cfg: dict) -> None:
    """Reject impossible values before any work starts."""
    checks = [
        (0 < cfg["split"].get("label_fraction", 1.0) <= 1, "split.label_fraction must be in (0, 1]"),
        (0 <= cfg["split"]["test_ratio"] < 1, "split.test_ratio must be in [0, 1)"),
        (0 <= cfg["split"]["val_ratio"] < 1, "split.val_ratio must be in [0, 1)"),
        (cfg["finetune"]["crop"] > 0 and cfg["finetune"]["crop"] % 32 == 0,
         "finetune.crop must be a positive multiple of 32"),
    ]
    for section in ("pretrain", "finetune"):
        checks += [(cfg[section]["steps"] >= 1, f"{section}.steps must be >= 1"),
                   (cfg[section]["batch_size"] >= 1, f"{section}.batch_size must be >= 1"),
                   (cfg[section]["lr"] > 0, f"{section}.lr must be > 0"),
                   (cfg[section]["log_every"] >= 1, f"{section}.log_every must be >= 1"),
                   (cfg[section].get("checkpoint_every", 0) >= 0,
                    f"{section}.checkpoint_every must be >= 0 (0: no checkpoints)"),
                   (cfg[section].get("max_nonfinite_skips", 0) >= 0, f"{section}.max_nonfinite_skips must be >= 0")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid config: {message}.")
    engine_settings(cfg.get("engine"))


def engine_settings(section: dict | None) -> dict:
    """The ``engine`` section with ENGINE_DEFAULTS for missing keys; unknown keys and values are refused."""
    values = {**ENGINE_DEFAULTS, **(section or {})}
    unknown = set(values) - set(ENGINE_DEFAULTS)
    if unknown:
        raise ConfigError(f"engine: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(ENGINE_DEFAULTS)}.")
    for key in (*ENGINE_SWITCHES, "data_on_device"):
        if values[key] not in ("auto", True, False):
            raise ConfigError(f"engine.{key} must be auto, True or False, got {values[key]!r}.")
    if not isinstance(values["loader_workers"], int) or values["loader_workers"] < 0:
        raise ConfigError(f"engine.loader_workers must be an integer >= 0, got {values['loader_workers']!r}.")
    return values
