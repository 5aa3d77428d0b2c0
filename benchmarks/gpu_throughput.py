"""Instance-aware pretraining and ResUNet finetuning throughput: naive baseline vs sslbench's fast path.

    python benchmarks/gpu_throughput.py                      # the paper's sizes on the GPU
    python benchmarks/gpu_throughput.py --compile --json gpu.json

Both paths run sslbench's own training loop (``pipeline.phases.pretrain`` / ``finetune``) on the same
seeded model and data; only the ``Acceleration`` differs:
- naive: eager fp32, foreach AdamW, crops / resizes / augmentations in CPU DataLoader workers;
- fast: bf16 autocast, channels_last, TF32, fused AdamW, sampling on the GPU (+ torch.compile
  with ``--compile``).
Step time is measured over ``--steps`` steps after ``--warmup`` steps (compilation, cuDNN autotuning,
worker start-up), between two device synchronisations. FLOPs per step (forward + backward) are
counted with ``torch.utils.flop_counter`` on one eager fp32 step; MFU = counted FLOPs / step time /
the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from sslbench.config import resolve_run_config
from sslbench.data.base import image_tensor
from sslbench.data.synthetic import Synthetic
from sslbench.engine.accel import Acceleration, resolve
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, segmentation_loss
from sslbench.models import build_encoder, build_segmenter
from sslbench.pipeline.data import DataSplit
from sslbench.pipeline.phases import finetune, pretrain, resolve_device, seed_everything
from sslbench.registry import PRETEXTS, build

#: dense bf16 tensor-core peaks (NVIDIA data sheets, without sparsity), TFLOP/s
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 NVL": 835.0,
                    "H100 PCIe": 756.0, "A100": 312.0, "L40S": 362.0}
GOALS = {"pretrain": {"speedup": 4.0, "mfu": 0.15}, "finetune": {"speedup": 3.0}}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def counted_flops(step) -> int:
    """FLOPs of one forward + backward, counted op by op (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def timed(run, warmup: int, steps: int, device: torch.device) -> dict:
    """Run ``run(on_step)`` for warmup + steps steps; time the last ``steps``."""
    marks = {}

    def on_step(step: int) -> None:
        if step in (warmup, warmup + steps):
            synchronize(device)
            marks[step] = time.perf_counter()
            if step == warmup and device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)

    if warmup == 0:
        on_step(0)
    run(on_step)
    seconds = (marks[warmup + steps] - marks[warmup]) / steps
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    return {"step_seconds": seconds, "peak_memory_gib": memory}


def measure_pretrain(cfg, images, device, accel: Acceleration, warmup: int, steps: int) -> dict:
    def run(on_step):
        generator = seed_everything(cfg.seed)
        encoder = build_encoder(cfg.backbone).to(device)
        pretrain(cfg, encoder, images, device, generator, accel=accel, on_step=on_step)
    return timed(run, warmup, steps, device)


def measure_finetune(cfg, samples, device, accel: Acceleration, warmup: int, steps: int) -> dict:
    def run(on_step):
        generator = seed_everything(cfg.seed)
        model = build_segmenter(cfg.backbone, cfg.head).to(device)
        finetune(cfg, model, DataSplit(train=samples, val=[], test=[]), device, generator, accel=accel,
                 on_step=on_step)
    return timed(run, warmup, steps, device)


def pretrain_flops(cfg, images, device) -> int:
    generator = seed_everything(cfg.seed)
    encoder = build_encoder(cfg.backbone).to(device)
    pretext = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels).to(device)
    batch = pretext.sample([image_tensor(s.image, device) for s in images], cfg.pretrain["batch_size"], generator)
    return counted_flops(lambda: pretext(encoder, batch)["loss"].backward())


def finetune_flops(cfg, samples, device) -> int:
    generator = seed_everything(cfg.seed)
    model = build_segmenter(cfg.backbone, cfg.head).to(device)
    sources = [source.to(device) for source in finetune_sources(samples, cfg.finetune["boundary_width"])]
    x, y = FinetuneSampler(cfg.finetune["crop"])(sources, cfg.finetune["batch_size"], generator)
    weights = torch.ones(3, device=device)
    return counted_flops(lambda: segmentation_loss(model, x, y, weights)["loss"].backward())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="paper", help="sizes: paper = 768² triplets, 512² finetune crops")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--images", type=int, default=8, help="synthetic source images")
    parser.add_argument("--image-size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8, help="CPU DataLoader workers of the naive path")
    parser.add_argument("--compile", action="store_true", help="torch.compile on the fast path")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak (default: by GPU name)")
    parser.add_argument("--only", choices=("pretrain", "finetune"), default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    total = args.warmup + args.steps
    cfg = resolve_run_config("instance_aware", preset=args.preset, backbone=args.backbone, overrides=[
        f"pretrain.steps={total}", f"finetune.steps={total}", f"pretrain.log_every={total}",
        f"finetune.log_every={total}", "pretrain.warmup_steps=0", "finetune.warmup_steps=0",
        "finetune.eval_every=0", *args.overrides])
    samples = Synthetic(num_images=args.images, size=args.image_size, seed=0).load()
    fast = resolve(cfg.engine, device)
    paths = {"naive": Acceleration.naive(args.workers), "fast": replace(fast, compile=args.compile)}
    peak = peak_tflops(device, args.peak_tflops)
    phases = {
        "pretrain": (measure_pretrain, pretrain_flops, cfg.pretrain["batch_size"], "triplets/s"),
        "finetune": (measure_finetune, finetune_flops, cfg.finetune["batch_size"], "images/s"),
    }
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
               "torch": torch.__version__, "peak_bf16_tflops": peak, "config": {
                   "preset": args.preset, "backbone": args.backbone, "pretrain_batch": cfg.pretrain["batch_size"],
                   "crop": cfg.pretext.get("crop"), "neg_scales": cfg.pretext.get("neg_scales"),
                   "finetune_batch": cfg.finetune["batch_size"], "finetune_crop": cfg.finetune["crop"],
                   "steps": args.steps, "warmup": args.warmup, "compile": args.compile}, "phases": {}}
    for phase, (measure, count, batch_size, unit) in phases.items():
        if args.only and phase != args.only:
            continue
        flops = count(cfg, samples, device)
        rows = {}
        for name, accel in paths.items():
            try:
                row = measure(cfg, samples, device, accel, args.warmup, args.steps)
            except torch.cuda.OutOfMemoryError:  # fp32 at the paper's batch can outgrow an 80 GB GPU
                torch.cuda.empty_cache()
                rows[name] = {"error": "out of memory: try --set pretrain.batch_size=4 (or finetune.)"}
                continue
            tflops = flops / row["step_seconds"] / 1e12
            rows[name] = {**row, "samples_per_second": batch_size / row["step_seconds"], "unit": unit,
                          "flops_per_step": flops, "tflops": tflops, "mfu": tflops / peak if peak else None}
        both = all("error" not in rows[name] for name in paths)
        rows["speedup"] = rows["naive"]["step_seconds"] / rows["fast"]["step_seconds"] if both else None
        results["phases"][phase] = rows
    print_table(results)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results


def print_table(results: dict) -> None:
    table = Table(title=f"sslbench throughput on {results['device']} (torch {results['torch']})")
    for column in ("phase", "path", "step (ms)", "throughput", "peak mem (GiB)", "TFLOP/s", "MFU", "speed-up"):
        table.add_column(column, justify="left" if column in ("phase", "path") else "right")
    for phase, rows in results["phases"].items():
        for name in ("naive", "fast"):
            row = rows[name]
            if "error" in row:
                table.add_row(phase, name, row["error"])
                continue
            mfu = "n/a" if row["mfu"] is None else f"{100 * row['mfu']:.1f} %"
            speedup = f"{rows['speedup']:.2f}×" if name == "fast" and rows["speedup"] else ""
            table.add_row(phase, name, f"{1000 * row['step_seconds']:.1f}",
                          f"{row['samples_per_second']:.1f} {row['unit']}",
                          "–" if math.isnan(row["peak_memory_gib"]) else f"{row['peak_memory_gib']:.1f}",
                          f"{row['tflops']:.1f}", mfu, speedup)
    goals = "; ".join(f"{phase}: ≥ {goal['speedup']}× the baseline" + (f", ≥ {100 * goal['mfu']:.0f} % MFU"
                                                                        if "mfu" in goal else "")
                      for phase, goal in GOALS.items())
    peak = results["peak_bf16_tflops"]
    against = f"MFU against {peak} TFLOP/s dense bf16" if peak else "no bf16 peak known for this device (--peak-tflops)"
    table.caption = f"FLOPs counted per step (forward + backward); {against}. Goals: {goals}."
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
