"""Resolve names ("instance_aware", "smoke", "resnet101") to mmengine config files under registry/
and compose them into one run config."""

from __future__ import annotations

import inspect
from argparse import Namespace
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from mmengine.config import Config, DictAction
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from sslbench.errors import ConfigError, UnknownComponentError
from sslbench.registry import BACKBONES, DATASETS, HEADS, PRETEXTS, closest_hint, registered, registered_class

# The typed schema of a run config. Scalars are strict (the text "200" is no int, True no number); containers
# are not, so a list from --set becomes a tuple. An int given for a float is stored as a float.
Count = Annotated[int, Strict(), Field(ge=0)]
Positive = Annotated[int, Strict(), Field(ge=1)]
Number = Annotated[float, Strict(), Field(ge=0)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0)]
Ratio = Annotated[float, Strict(), Field(ge=0, lt=1)]
Probability = Annotated[float, Strict(), Field(ge=0, le=1)]
Flag = Annotated[bool, Strict()]
Switch = Literal["auto", True, False]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Split(_Section):
    test_ratio: Ratio
    val_ratio: Ratio
    seed: Count
    label_fraction: Annotated[float, Strict(), Field(gt=0, le=1)] = 1.0
    resample_per_seed: Flag = False
    # draw test, train and val by whole patients (the reader's meta["patient"], e.g. --reader tnbc), never by tile
    group_by: Literal["patient"] | None = None


class Training(_Section):
    """``pretrain``; ``finetune`` adds its recipe."""
    steps: Positive
    batch_size: Positive
    lr: PositiveNumber
    weight_decay: Number
    warmup_steps: Count
    log_every: Positive
    checkpoint_every: Count = 0  # 0: no checkpoints
    max_nonfinite_skips: Count = 0


class Finetune(Training):
    crop: Annotated[int, Strict(), Field(gt=0, multiple_of=32)]
    boundary_width: Positive
    class_weights: tuple[Number, Number, Number]
    eval_every: Count = 0
    dice_weight: Number = 0.0
    stain_scale: Ratio = 0.0  # densities scaled by U[1 - a, 1 + a]: from 1 on a stain could turn negative
    stain_shift: Number = 0.0
    scale: tuple[PositiveNumber, PositiveNumber] | None = None
    elastic: tuple[Number, Number] | None = None
    freeze_encoder: Flag = False  # train the decoder only: encoder in eval mode, no gradient into it


class Tune(_Section):
    """Candidates for ``eval.postprocess.probabilities_to_instances`` arguments (a None threshold: argmax);
    an argument left out keeps its default."""
    min_area: Annotated[tuple[Count, ...], Field(min_length=1)] = ()
    min_seed_area: Annotated[tuple[Count, ...], Field(min_length=1)] = ()
    body_threshold: Annotated[tuple[Probability | None, ...], Field(min_length=1)] = ()
    foreground_threshold: Annotated[tuple[Probability | None, ...], Field(min_length=1)] = ()


class Evaluation(_Section):
    min_area: Count
    tile: Positive
    overlap: Count
    flips: Flag = False
    tune: Tune | None = None

    @model_validator(mode="after")
    def overlap_below_tile(self):
        if self.overlap >= self.tile:
            raise ValueError(f"evaluation.overlap must be below evaluation.tile ({self.tile}), got {self.overlap}")
        return self


class Engine(_Section):
    """How fast a run goes, not what it computes (what each switch does: ``engine.accel``)."""
    amp: Switch = "auto"
    channels_last: Switch = "auto"
    tf32: Switch = "auto"
    fused_optimizer: Switch = "auto"
    compile: Flag | str = False  # True (inductor) or a torch.compile backend name
    data_on_device: Switch = "auto"
    loader_workers: Count = 4


class TransferSet(_Section):
    """A labelled test set of another source (bench --transfer-test): scored, never chosen on."""
    path: str
    reader: str | None = None  # None: detected from the folder's layout


class RunConfig(_Section):
    """What ``resolve_run_config`` composes; pretext, backbone, head and data are checked against the
    parameters of the class they name."""
    name: str
    preset: str
    seed: Count
    device: str
    pretext: dict[str, Any]
    backbone: dict[str, Any]
    head: dict[str, Any]
    data: dict[str, Any]
    test_data: str | None = None
    unlabeled: str | None = None
    transfer_test: dict[str, TransferSet] | None = None
    # run --validate-only: stop after the validation images; no test image is scored
    validate_only: bool = False
    split: Split
    pretrain: Training
    finetune: Finetune
    evaluation: Evaluation
    engine: Engine


#: the ``engine`` section every run config gets; presets and ``--set engine.X=...`` override it
ENGINE_DEFAULTS = Engine().model_dump()
#: the switches "auto" turns on for CUDA (bf16 and channels_last also for a CPU with native bf16: engine.accel)
ENGINE_SWITCHES = ("amp", "channels_last", "tf32", "fused_optimizer")
#: what a preset file may set (registry/preset/_base.py)
_PRESET_KEYS = ("description", "real_data", "backbone", "data", "split", "pretext_overrides", "pretrain",
                "finetune", "evaluation", "engine")


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
#: the registry each run config section naming a ``type`` is built from
_SECTION_REGISTRY = {**_REGISTRY_OF, "data": DATASETS}


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


def _component_options(cls) -> set[str] | None:
    """The config keys a registered class (or function) takes besides ``type``: its parameters; None
    when it takes any (``**kwargs``)."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not p.VAR_POSITIONAL}


def _accepted(cls, overrides: dict) -> dict:
    return {k: v for k, v in overrides.items() if k in (_component_options(cls) or ())}


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


def backbone_refusal(pretext: str, backbone: str) -> str | None:
    """Why ``pretext`` cannot pretrain ``backbone`` (its ``vit_refusal`` or ``cnn_refusal``), else None."""
    from sslbench.models import is_token_backbone

    vit = is_token_backbone(component_config("backbone", backbone))
    refusal = getattr(registered_class(PRETEXTS, component_config("pretext", pretext).get("type")),
                      "vit_refusal" if vit else "cnn_refusal", None)
    if not refusal:
        return None
    kind, other = (("a ViT", "a CNN backbone (e.g. resnet34)") if vit
                   else ("a CNN", "a ViT backbone (e.g. vit_small_patch16_224)"))
    return f"pretext {pretext} cannot pretrain backbone {backbone} ({kind}): {refusal}; use {other}"


def resolve_run_config(pretext: str, preset: str = "smoke", backbone: str | None = None, head: str | None = None,
                       seed: int = 0, device: str = "auto", data: str | None = None, test_data: str | None = None,
                       unlabeled: str | None = None, overrides: list[str] | None = None,
                       allow_synthetic: bool = False, reader: str | None = None,
                       transfer_test: dict[str, dict] | None = None, validate_only: bool = False) -> Config:
    """One flat config for a run; ``preset`` sizes override the pretext's where it accepts them,
    then ``overrides`` ("finetune.steps=200", "pretext.weights=/path/r101.pth") override anything.
    ``backbone`` None: the preset's ``backbone``, else resnet101 (the paper's). A preset marked
    ``real_data`` (mini, paper) refuses the synthetic default unless ``allow_synthetic``. ``reader``
    reads ``data`` with that reader instead of the detected one; ``transfer_test`` ({name: {"path",
    "reader"}}) names extra labelled test sets; ``validate_only`` stops the run after its validation
    images. All three are left out of the config when not given, so configs (and job keys) without them
    stay as they were. Unknown keys and bad values are refused
    (``validate``), naming the preset file or ``--set``."""
    cfg = load_component("preset", preset)
    origin = f"preset {preset} (registry/preset/{preset}.py)"
    _check_preset(cfg, origin)
    backbone = preset_backbone(preset, backbone)
    if data is None and cfg.get("real_data") and not allow_synthetic:
        raise ConfigError(f"preset {preset} is sized for real images: pass --data DIR (e.g. MoNuSeg's training "
                          "images); to run it on the built-in synthetic data anyway, add --allow-synthetic.")
    if reader is not None and data is None:
        raise ConfigError(f"--reader {reader} reads --data, and no --data was given; pass --data DIR or drop --reader.")
    from sslbench.models import check_head_fits, default_head

    backbone_cfg = component_config("backbone", backbone)
    head_cfg = component_config("head", head or default_head(backbone_cfg))
    check_head_fits(backbone_cfg, head_cfg)
    refusal = backbone_refusal(pretext, backbone)
    if refusal:
        raise ConfigError(f"{refusal}.")
    pretext_cfg = component_config("pretext", pretext)
    cls = registered_class(PRETEXTS, pretext_cfg.get("type"))
    pretext_cfg.update(_accepted(cls, dict(cfg.get("pretext_overrides", {}))))
    merged = dict(
        name=pretext, preset=preset, seed=seed, device=device,
        pretext=pretext_cfg,
        backbone=backbone_cfg, head=head_cfg,
        data=dict(cfg.data) if data is None else dict(type="path", path=str(data),
                                                      **({"reader": reader} if reader else {})),
        test_data=test_data, unlabeled=unlabeled, **({"transfer_test": transfer_test} if transfer_test else {}),
        **({"validate_only": True} if validate_only else {}),
        split=dict(cfg.split), pretrain=dict(cfg.pretrain), finetune=dict(cfg.finetune),
        evaluation=dict(cfg.evaluation),
        engine={**ENGINE_DEFAULTS, **cfg.get("engine", {})},
    )
    cfg = Config(merged)
    validate(cfg, f"{origin} with pretext {pretext}")
    if overrides:
        for key, value in parse_overrides(overrides).items():
            try:
                cfg.merge_from_dict({key: value})
            except TypeError:  # mmengine: a dotted key into a value that is not a dict
                parent = key.rpartition(".")[0]
                raise ConfigError(f"--set {key}: {parent} is a value, not a section with keys; "
                                  f"set it whole (--set {parent}=VALUE).") from None
        validate(cfg, "--set")
    return cfg


def _check_preset(preset: Config, origin: str) -> None:
    """A preset's own keys: the sections it sets, and ``pretext_overrides`` that some pretext takes."""
    for key in preset:
        if key not in _PRESET_KEYS:
            raise ConfigError(f"{origin}: {key} is not a preset setting.{closest_hint(key, _PRESET_KEYS)}")
    taken = set().union(*(_component_options(cls) or () for cls in registered(PRETEXTS).values()))
    for key in preset.get("pretext_overrides", {}):
        if key not in taken:
            raise ConfigError(f"{origin}: pretext_overrides.{key} is an option of no registered pretext."
                              f"{closest_hint(key, taken)}")


def parse_overrides(items: list[str]) -> dict:
    """["a.b=3", "c=x"] -> {"a.b": 3, "c": "x"}; values read as mmengine's ``--cfg-options`` reads them
    (``DictAction``: 3, 1e-3, true, None, (a, b) a tuple, a,b or [a, b] a list, else the text)."""
    pairs = [item.partition("=") for item in items]
    for item, (key, sep, _) in zip(items, pairs):
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. finetune.steps=200), got '{item}'.")
    namespace = Namespace()
    DictAction(option_strings=["--set"], dest="overrides")(None, namespace,
                                                           [f"{key.strip()}={text}" for key, _, text in pairs])
    parsed = namespace.overrides
    for key, _, text in pairs:
        if isinstance(parsed[key.strip()], str):  # DictAction drops every space, which would change a path
            parsed[key.strip()] = text.strip().strip("'\"")
    return parsed


def validate(cfg: Config, origin: str) -> None:
    """Refuse unknown keys and wrong or impossible values before any work starts, naming ``origin`` (where
    the values came from); values are stored back typed (an int given for a float as a float)."""
    checked = _checked(RunConfig, cfg.to_dict(), origin)
    for kind in _SECTION_REGISTRY:
        _check_options(kind, cfg[kind], origin)
    readers = {"data.reader": cfg.data.get("reader") if cfg.data.get("type") == "path" else None,
               **{f"transfer_test.{name}.reader": entry.get("reader")
                  for name, entry in (cfg.get("transfer_test") or {}).items()}}
    for key, reader in readers.items():
        _check_reader(key, reader, origin)
    for key, value in checked.model_dump(exclude_unset=True).items():
        cfg[key] = value


def _check_options(kind: str, section: dict, origin: str) -> None:
    """Each key of the ``kind`` section (pretext, backbone, head, data) must be a parameter of the class its
    ``type`` names; ``--data DIR`` makes a ``path`` section."""
    if kind == "data" and section.get("type") == "path":
        options = {"path", "rescale", "reader"}  # rescale: a reader option every file reader takes
    else:
        options = _component_options(registered_class(_SECTION_REGISTRY[kind], section.get("type")))
    for key in section:
        if options is not None and key != "type" and key not in options:
            raise ConfigError(f"{origin}: {kind}.{key} is not an option of {kind} {section['type']}."
                              f"{closest_hint(key, options)}")


def _check_reader(key: str, reader: str | None, origin: str) -> None:
    from sslbench.data.detect import FORMATS  # here: the readers load only once a config is checked

    if reader is not None and reader not in FORMATS:
        raise ConfigError(f"{origin}: {key} '{reader}' is not a reader.{closest_hint(str(reader), FORMATS)} "
                          f"Choose one of: {', '.join(FORMATS)}.")


def _checked(schema: type[BaseModel], values: dict, origin: str, prefix: str = "") -> BaseModel:
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_problem(schema, exc.errors(), values, prefix)}") from None


_COMPARISONS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _problem(schema: type[BaseModel], errors: list, values: dict, prefix: str) -> str:
    """pydantic's first error as one phrase naming the dotted key ("finetune.steps must be ...")."""
    first, loc = errors[0], errors[0]["loc"]
    if first["type"] == "extra_forbidden":
        for part in loc[:-1]:  # down to the section holding the unknown key
            annotation = schema.model_fields[part].annotation
            schema = next(t for t in (annotation, *get_args(annotation)) if isinstance(t, type)
                          and issubclass(t, BaseModel))
        section = prefix + "".join(f"{part}." for part in loc[:-1])
        key = section + loc[-1]
        return f"{key} is not a setting.{closest_hint(key, [section + name for name in schema.model_fields])}"
    if first["type"] == "value_error":  # a model validator's message names its keys
        return f"{first['ctx']['error']}."
    key = _dotted(loc, values, prefix)
    if first["type"] == "missing":
        return f"{key} is missing."
    if first["type"] in _COMPARISONS:
        bound = next(iter(first["ctx"].values()))
        return f"{key} must be {_COMPARISONS[first['type']]} {bound:g}, got {first['input']!r}."
    # a union's members each give an error for the same key: "must be a valid boolean or a valid string"
    said = dict.fromkeys(e["msg"] for e in errors if _dotted(e["loc"], values, prefix) == key)
    should = "Input should be "
    if all(message.startswith(should) for message in said):
        return f"{key} must be {' or '.join(m.removeprefix(should) for m in said)}, got {first['input']!r}."
    return f"{key}: {'; '.join(said).lower()}, got {first['input']!r}."


def _dotted(loc: tuple, values: dict, prefix: str) -> str:
    """The config key of a pydantic error location ("finetune.scale[1]"), union members' names left out."""
    parts = []
    for part in loc:
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        elif isinstance(values, dict):  # not a union member's name: those come where no dict is
            parts.append(part)
            values = values.get(part)
    return prefix + ".".join(parts)


def engine_settings(section: dict | None) -> dict:
    """The ``engine`` section with ENGINE_DEFAULTS for missing keys; unknown keys and values are refused."""
    return _checked(Engine, section or {}, "invalid config", "engine.").model_dump()
