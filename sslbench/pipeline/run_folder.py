"""Where a run keeps its files. ``RunFolder`` is the one owner of an ``sslbench run`` folder's layout;
``Checkpoints`` of a folder of training checkpoints (a run folder's, or one per bench job), and the
one code that deletes checkpoints."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from mmengine.config import Config

from sslbench.engine import distributed
from sslbench.engine.checkpoint import Checkpoint, checkpoint_step, refuse_mismatch
from sslbench.engine.weights import atomic_write, write_safetensors
from sslbench.errors import ConfigError, DataError
from sslbench.pipeline.artifact import EncoderArtifact
from sslbench.pipeline.fingerprint import pretrain_fingerprint, run_fingerprint


@dataclass(frozen=True)
class Checkpoints:
    """A folder of training checkpoints, one file per phase (``pretrain``, ``finetune``): what a
    re-run resumes from until the phase's result is saved."""

    folder: Path

    def path(self, phase: str) -> Path:
        return self.folder / f"{phase}.safetensors"

    def checkpoint(self, phase: str, section: dict, fingerprint: dict, generator: torch.Generator) -> Checkpoint:
        """Where ``train`` saves ``phase`` every ``section.checkpoint_every`` steps (0: never)."""
        return Checkpoint(self.path(phase), section.get("checkpoint_every", 0), fingerprint, generator)

    def subfolder(self, name: str) -> Checkpoints:
        """Checkpoints in a folder of this one (bench keeps one per pretraining and one per job)."""
        return Checkpoints(self.folder / name)

    def finish(self, phase: str) -> None:
        """The phase's result is saved and supersedes its checkpoint (the main process deletes it)."""
        if distributed.is_main():
            self.path(phase).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the folder once its phases have finished: only leftovers of killed writes remain."""
        if distributed.is_main():
            shutil.rmtree(self.folder, ignore_errors=True)

    def remove_if_empty(self) -> None:
        """Delete the folder if nothing is left in it: another bench sharing the output folder may still
        be training into a subfolder of its own."""
        if distributed.is_main():
            with contextlib.suppress(OSError):  # not empty, or already gone
                self.folder.rmdir()


@dataclass(frozen=True)
class RunFolder:
    """An ``sslbench run`` folder: config.py (as composed) and config.json (the run fingerprint), log.txt,
    the encoder artifact, checkpoints/ while unfinished, then overlay.png, model.safetensors (the
    finetuned ResUNet) and metrics.json, which marks the run finished."""

    path: Path

    @property
    def encoder(self) -> EncoderArtifact:
        return EncoderArtifact(self.path / "encoder.safetensors")

    @property
    def checkpoints(self) -> Checkpoints:
        return Checkpoints(self.path / "checkpoints")

    @property
    def log(self) -> Path:
        return self.path / "log.txt"

    @property
    def overlay(self) -> Path:
        return self.path / "overlay.png"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def model(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def config_json(self) -> Path:
        return self.path / "config.json"

    def create(self) -> None:
        """Refuse a finished run (it is never overwritten); create the folder and prove it writable
        before any work starts."""
        if self.metrics.exists():
            raise ConfigError(f"{self.path} already holds a finished run; pass another --out or remove it.")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass
        except OSError as exc:
            raise ConfigError(f"cannot write to the run folder {self.path} ({exc.strerror}); "
                              "pass a writable --out.") from None

    def resume_point(self) -> str | None:
        """Where a re-run continues ("pretraining from step 10"); None for a fresh folder."""
        for phase, label in (("finetune", "finetuning"), ("pretrain", "pretraining")):
            path = self.checkpoints.path(phase)
            if path.is_file():
                return f"{label} from step {checkpoint_step(path)}"
        if self.encoder.finished() is not None:
            return "finetuning from step 0 (pretraining finished)"
        return None

    def check_same_config(self, cfg: Config) -> None:
        """Refuse to continue an unfinished run with a different config, and a finished encoder made
        with another (a folder with nothing to resume takes the new config: a run that failed early
        may be fixed and re-run)."""
        if self.resume_point() is None:
            return
        saved = self.config_json
        if saved.is_file():
            try:
                fingerprint = json.loads(saved.read_text())
            except (ValueError, OSError) as exc:
                raise DataError(f"{saved}: unreadable ({exc}); pass another --out or remove the folder.") from None
            refuse_mismatch(fingerprint, run_fingerprint(cfg), f"the unfinished run in {self.path}",
                            "re-run with the same options to resume it, or pass another --out")
        self.encoder.refuse_other(pretrain_fingerprint(cfg),
                                  "re-run with the options it was made with, or delete it to pretrain again")

    def write_config(self, cfg: Config) -> None:
        """The config as composed (config.py, to read) and its fingerprint (config.json, to compare)."""
        if distributed.is_main():
            atomic_write(self.path / "config.py", lambda tmp: tmp.write_text(cfg.pretty_text))
            atomic_write(self.config_json,
                         lambda tmp: tmp.write_text(json.dumps(run_fingerprint(cfg), indent=2)))

    def write_results(self, result: dict, model_state: dict[str, torch.Tensor]) -> None:
        """The finetuned ResUNet (so a run can be scored again without retraining), then metrics.json;
        the checkpoints go."""
        if distributed.is_main():
            write_safetensors(self.model, model_state)
            atomic_write(self.metrics, lambda tmp: tmp.write_text(json.dumps(result, indent=2)))
            self.checkpoints.remove()
