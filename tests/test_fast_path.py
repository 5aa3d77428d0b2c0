"""The GPU fast path's switches, proven on CPU where they can be: channels_last, torch.compile,
fused/foreach optimizer, the device vs CPU-DataLoader batch paths and the finetune sampler."""

import re

import numpy as np
import pytest
import torch
from torch import nn

from sslbench.config import resolve_run_config
from sslbench.data.base import Sample
from sslbench.data.synthetic import Synthetic
from sslbench.engine.accel import Acceleration, arithmetic, describe_arithmetic, maybe_compile, resolve
from sslbench.engine.batches import batch_source
from sslbench.engine.finetune import FinetuneSampler, finetune_sources, segmentation_loss
from sslbench.engine.loop import LoopSettings, train
from sslbench.errors import ConfigError
from sslbench.models import build_segmenter
from sslbench.pretext.instance_aware import InstanceAware
from tiny import TINY_SETTINGS, assert_scored, still_initial

CPU = torch.device("cpu")
BACKBONE = dict(type="SmpEncoder", name="resnet18")
HEAD = dict(type="Unet", classes=3, decoder_channels=(32, 16, 16, 8, 8))
FP32 = dict(amp=False, channels_last=False)  # the reference, whatever "auto" picks on this CPU


@pytest.mark.parametrize("native_bf16", [False, True])
def test_auto_switches_follow_the_device(monkeypatch, native_bf16):
    # torch's CPU probes answer for hardware we may not have; both answers are tried on any machine
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16, raising=False)
    on_cpu, on_cuda = resolve(None, CPU), resolve(None, torch.device("cuda"))
    assert on_cpu.amp is on_cpu.channels_last is native_bf16
    assert not any((on_cpu.tf32, on_cpu.fused_optimizer))
    assert all((on_cuda.amp, on_cuda.channels_last, on_cuda.tf32, on_cuda.fused_optimizer))
    assert on_cpu.compile is False and on_cpu.data_on_device == "auto"
    assert resolve({"channels_last": True}, CPU).channels_last


def test_arithmetic_records_precision_kernels_and_threads(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    fp32 = arithmetic(resolve(FP32, CPU), CPU)
    assert fp32["precision"] == "fp32" and fp32["channels_last"] is False
    assert fp32["kernels"] == torch.backends.cpu.get_cpu_capability() and fp32["threads"] == torch.get_num_threads()
    assert fp32["processor"]  # the CPU's model name
    assert fp32["processes"] == 1  # not under torchrun
    bf16 = arithmetic(resolve({"amp": True, "channels_last": True}, CPU), CPU)
    assert bf16["precision"] == "bf16" and bf16["channels_last"] is True
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # caps the convolutions' kernels: the record must say so
    capped = arithmetic(resolve(FP32, CPU), CPU)
    assert capped["kernels"].endswith("oneDNN <= AVX2")
    assert describe_arithmetic(dict(bf16, threads=1, processor="AMD EPYC")) == \
        f"bf16 channels_last, {bf16['kernels']} kernels, 1 thread, AMD EPYC"
    assert describe_arithmetic(dict(fp32, threads=2, processor="AMD EPYC", processes=4)) == \
        f"fp32, {fp32['kernels']} kernels, 2 threads, AMD EPYC, 4 processes"
    recorded_before_processes = {k: v for k, v in bf16.items() if k != "processes"}
    assert describe_arithmetic(recorded_before_processes) == describe_arithmetic(bf16)
    assert describe_arithmetic(None) == "not recorded"


@pytest.mark.parametrize(("override", "message"), [
    ("engine.chanels_last=True", "engine.chanels_last is not a setting. Did you mean 'engine.channels_last'?"),
    ("engine.amp=sometimes", "engine.amp must be 'auto', True or False, got 'sometimes'"),
    ("engine.loader_workers=-1", "engine.loader_workers must be >= 0, got -1"),
])
def test_bad_engine_settings_are_refused_before_any_work(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_run_config("scratch", overrides=[override])


def tiny_segmentation_run(accel: Acceleration, steps: int = 3) -> tuple[nn.Module, list[dict]]:
    torch.manual_seed(0)
    model = build_segmenter(BACKBONE, HEAD)
    maybe_compile(model, accel)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (2, 64, 64), generator=torch.Generator().manual_seed(2))
    history = train(model, lambda: segmentation_loss(model, x, y, torch.ones(3)),
                    LoopSettings(steps=steps, lr=1e-3, log_every=1), CPU, "tiny", accel=accel)
    return model, history


def losses(history: list[dict]) -> np.ndarray:
    return np.array([entry["loss"] for entry in history])


@pytest.fixture(scope="module")
def eager_run() -> tuple[list[str], np.ndarray]:
    """The fp32 eager reference: its state_dict keys and losses."""
    model, history = tiny_segmentation_run(resolve(FP32, CPU))
    return list(model.state_dict()), losses(history)


@pytest.mark.parametrize(("switch", "rtol"), [
    ({"channels_last": True}, 1e-4), ({"amp": True, "channels_last": True}, 2e-2),
    # aot_eager runs dynamo + AOTAutograd (the graph capture --compile relies on) without a C compiler
    ({"compile": "aot_eager"}, 1e-4), ({"fused_optimizer": True}, 1e-4)],
    ids=["channels_last", "bf16_channels_last", "compile", "fused_optimizer"])
def test_a_fast_path_switch_trains_the_same_model(eager_run, switch, rtol):
    accel = Acceleration(**{**resolve(FP32, CPU).__dict__, **switch})
    model, history = tiny_segmentation_run(accel)
    keys, reference = eager_run
    assert list(model.state_dict()) == keys  # a compiled model saves under the eager model's keys
    assert model.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last) is accel.channels_last
    np.testing.assert_allclose(losses(history), reference, rtol=rtol)


@pytest.fixture(scope="module")
def images():
    return [torch.from_numpy(s.image).permute(2, 0, 1).contiguous() for s in Synthetic(num_images=3, size=160).load()]


def test_worker_batches_are_whole_reproducible_and_differ_from_step_to_step(images):
    task = InstanceAware((3, 64, 64, 128, 256, 512), crop=64, neg_scales=(48, 32))

    def draw(seed: int) -> list[dict]:
        next_batch = batch_source(task.sample, images, 2, CPU, torch.Generator().manual_seed(seed),
                                  on_device=False, workers=2)
        return [next_batch() for _ in range(3)]

    first, again, other = draw(0), draw(0), draw(1)
    for batch in first:
        assert batch["anchor"].shape == batch["negative"].shape == (2, 3, 64, 64)
        assert batch["anchor"].dtype == torch.uint8
    for a, b in zip(first, again):
        assert torch.equal(a["anchor"], b["anchor"])  # same seed, same worker count: same crops
    assert not torch.equal(first[0]["anchor"], first[1]["anchor"])
    assert not torch.equal(first[0]["anchor"], other[0]["anchor"])


def test_device_path_follows_the_generator_step_by_step(images):
    task = InstanceAware((3, 64, 64, 128, 256, 512), crop=64, neg_scales=(48, 32))
    next_batch = batch_source(task.sample, images, 2, CPU, torch.Generator().manual_seed(0), on_device=True)
    direct = task.sample(images, 2, torch.Generator().manual_seed(0))
    assert torch.equal(next_batch()["anchor"], direct["anchor"])


def test_finetune_crops_flips_and_turns_move_labels_with_pixels():
    # the red channel encodes the class (0, 100, 200), so after any crop / flip / turn and the
    # monotone per-image colour jitter, brighter red must still mean a higher class
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, (96, 96))
    labels = np.zeros((96, 96), dtype=np.int32)  # instances: every class-1 and class-2 pixel its own blob
    image = np.zeros((96, 96, 3), dtype=np.uint8)
    image[..., 0] = classes * 100
    source = finetune_sources([Sample("toy", image, labels)], boundary_width=1)[0]
    source[3] = torch.from_numpy(classes.astype(np.uint8))  # the label channel, independent of instance_to_classes
    x, y = FinetuneSampler(crop=32)([source], 8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 3, 32, 32) and y.shape == (8, 32, 32) and y.dtype == torch.long
    for red, target in zip(x[:, 0], y):
        order = [red[target == c].mean().item() for c in range(3) if (target == c).any()]
        assert order == sorted(order)
        for c in range(3):
            if (target == c).any():
                assert torch.allclose(red[target == c], red[target == c][0])  # one value per class


def test_finetune_sources_stack_image_and_classes():
    sample = Synthetic(num_images=1, size=96).load()[0]
    source = finetune_sources([sample], boundary_width=1)[0]
    assert source.shape == (4, 96, 96) and source.dtype == torch.uint8
    assert np.array_equal(source[:3].permute(1, 2, 0).numpy(), sample.image)
    assert set(source[3].unique().tolist()) <= {0, 1, 2} and (source[3] > 0).any()


@pytest.mark.slow
def test_a_run_on_the_cpu_dataloader_path_trains(tmp_path):
    from sslbench.pipeline.run import run_job
    cfg = resolve_run_config("instance_aware", backbone="resnet18", device="cpu", overrides=[
        *(f"{key}={value}" for key, value in TINY_SETTINGS.items()), "pretrain.log_every=1",
        "engine.data_on_device=False", "engine.loader_workers=1"])
    result = run_job(cfg, tmp_path / "run")
    assert [h["step"] for h in result["history"]["pretrain"]] == [1, 2]
    assert not any(still_initial(tmp_path / "run" / result["encoder_weights"], cfg.backbone, cfg.seed).values())
    assert_scored(result["test"], result["images"]["test"])
