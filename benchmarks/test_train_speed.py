"""Throughput regressions of the training hot path at small CPU sizes (``tox -e bench``)."""

import pytest
import torch

from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.engine.accel import autocast, resolve
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, segmentation_loss
from sslbench.models import build_encoder, build_segmenter
from sslbench.pretext.instance_aware import InstanceAware

BACKBONE = dict(type="SmpEncoder", name="resnet18")


@pytest.fixture(scope="module")
def samples():
    return Synthetic(num_images=4, size=256).load()


@pytest.fixture(scope="module")
def images(samples):
    return [torch.from_numpy(s.image).permute(2, 0, 1).contiguous() for s in samples]


def test_instance_aware_sampler_throughput(benchmark, images):
    task = InstanceAware((3, 64, 64, 128, 256, 512), crop=192, neg_scales=(128, 64, 32, 16))
    generator = torch.Generator().manual_seed(0)
    batch = benchmark(task.sample, images, 16, generator)
    assert batch["negative"].shape == (16, 3, 192, 192)


def test_pretrain_step(benchmark, images):
    torch.manual_seed(0)
    encoder = build_encoder(BACKBONE)
    task = InstanceAware(encoder.out_channels, crop=96, neg_scales=(64, 32))
    optimizer = torch.optim.AdamW(list(encoder.parameters()) + list(task.parameters()), lr=1e-4)
    generator = torch.Generator().manual_seed(0)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = task(encoder, task.sample(images, 2, generator))["loss"]
        loss.backward()
        optimizer.step()
        return loss

    assert torch.isfinite(benchmark(step))


def test_finetune_step(benchmark, samples):
    torch.manual_seed(0)
    model = build_segmenter(BACKBONE, dict(type="Unet", classes=3, decoder_channels=(64, 32, 16, 16, 8)))
    sampler, sources = FinetuneSampler(crop=96), finetune_sources(samples, boundary_width=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    weights = torch.ones(3)
    generator = torch.Generator().manual_seed(0)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = segmentation_loss(model, *sampler(sources, 4, generator), weights)["loss"]
        loss.backward()
        optimizer.step()
        return loss

    assert torch.isfinite(benchmark(step))


def test_cpu_preset_finetune_step(benchmark):
    """One finetuning step exactly as the cpu preset trains (its backbone, crop, batch, augmentation,
    loss and precision: bf16 + channels_last where the CPU has native bf16) on synthetic tiles: the
    step that fills most of a 30-minute cpu-preset run."""
    cfg = resolve_run_config("scratch", preset="cpu", allow_synthetic=True)
    ft = cfg.finetune
    accel = resolve(cfg.get("engine"), torch.device("cpu"))
    torch.manual_seed(0)
    model = build_segmenter(cfg.backbone, cfg.head)
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    sampler = FinetuneSampler(ft["crop"], ft["scale"], ft["elastic"], ft["stain_scale"], ft["stain_shift"])
    sources = finetune_sources(Synthetic(num_images=2, size=400).load(), ft["boundary_width"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=ft["lr"])
    weights = torch.tensor(ft["class_weights"])
    generator = torch.Generator().manual_seed(0)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(torch.device("cpu"), accel.amp):
            loss = segmentation_loss(model, *sampler(sources, ft["batch_size"], generator), weights,
                                     ft["dice_weight"])["loss"]
        loss.backward()
        optimizer.step()
        return loss

    assert torch.isfinite(benchmark.pedantic(step, rounds=3, warmup_rounds=1))
