"""Seconds per finetuning step, encoder trained vs frozen (issue 43 item 4), at the cpu preset's sizes.

    python benchmarks/protocol_step_time.py [--backbone resnet34 --backbone vit_small_patch16_224] [--steps 40] \
        [--set head.decoder_channels="(128, 64, 32, 16)"]

Both protocols run the real training loop (``engine.loop.train``) on the real segmentation loss with
the preset's crop, batch and arithmetic, alternating in blocks so that a change in the machine's load
falls on both; the figure is the median of ``train``'s step_times readings (evaluation left out).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.engine.accel import arithmetic, describe_arithmetic
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, freeze_encoder, segmentation_loss
from sslbench.engine.loop import train
from sslbench.models import build_segmenter
from sslbench.pipeline.phases import acceleration, loop_settings


def step_times(backbone: str, frozen: bool, steps: int, samples, overrides: list[str]) -> list[float]:
    cfg = resolve_run_config("scratch", preset="cpu", backbone=backbone, device="cpu", allow_synthetic=True,
                             overrides=[f"finetune.steps={steps}", "finetune.log_every=5", "finetune.warmup_steps=1",
                                        *overrides])
    ft, device = cfg.finetune, torch.device("cpu")
    torch.manual_seed(0)
    model = build_segmenter(cfg.backbone, cfg.head)
    if frozen:
        freeze_encoder(model)
    sampler, sources = FinetuneSampler(ft["crop"], ft.get("scale")), finetune_sources(samples, ft["boundary_width"])
    generator, weights = torch.Generator().manual_seed(0), torch.tensor(ft["class_weights"])
    times: list[float] = []
    train(model, lambda: segmentation_loss(model, *sampler(sources, ft["batch_size"], generator), weights),
          loop_settings(ft), device, f"{backbone} {'frozen' if frozen else 'finetune'}",
          accel=acceleration(cfg, device), step_times=times)
    return times[1:]  # the first reading holds the warm-up steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", action="append")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--blocks", type=int, default=2, help="alternations of the two protocols")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="a config override for every run, as sslbench run --set")
    args = parser.parse_args()
    samples = Synthetic(num_images=4, size=512).load()
    cfg = resolve_run_config("scratch", preset="cpu", device="cpu", allow_synthetic=True)
    print(f"arithmetic: {describe_arithmetic(arithmetic(acceleration(cfg, torch.device('cpu')), torch.device('cpu')))}")
    print("| backbone | finetune s/step | frozen s/step | frozen / finetune |")
    print("|---|---:|---:|---:|")
    for backbone in args.backbone or ["resnet34", "vit_small_patch16_224"]:
        found = {False: [], True: []}
        for _ in range(args.blocks):
            for frozen in (False, True):
                found[frozen] += step_times(backbone, frozen, args.steps, samples, args.overrides)
        trained, frozen = statistics.median(found[False]), statistics.median(found[True])
        print(f"| {backbone} {' '.join(args.overrides)} | {trained:.3f} | {frozen:.3f} | {frozen / trained:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
