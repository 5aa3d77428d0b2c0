"""The joint-embedding pretexts (SimCLR, MoCo v2, BYOL, Barlow Twins, DINO): their views, their losses against
the papers' formulas written out naively, momentum copies, the loop's after_step hook, and the
batch-wide losses under torchrun equal to one process's."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import gaussian_blur as torchvision_blur

from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.engine.checkpoint import Checkpoint
from sslbench.engine.loop import LoopSettings, train
from sslbench.models import build_encoder
from sslbench.pipeline.phases import pretrain, seed_everything
from sslbench.pretext.barlow_twins import barlow_twins_loss
from sslbench.pretext.base import random_crops
from sslbench.pretext.byol import BYOL, regression_loss
from sslbench.pretext.dino import DINO, DINOHead, dino_loss, teacher_entropy
from sslbench.pretext.moco_v2 import MoCoV2, info_nce
from sslbench.pretext.simclr import nt_xent
from sslbench.pretext.views import ViewSettings, gaussian_blur, random_views

sys.path.insert(0, str(Path(__file__).parent))
from ddp_reference import siamese_problem, torchrun_env  # noqa: E402

RESNET18 = dict(type="SmpEncoder", name="resnet18")


@pytest.fixture(scope="module")
def images():
    return [torch.from_numpy(s.image).permute(2, 0, 1).contiguous()
            for s in Synthetic(num_images=2, size=96, seed=0).load()]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- views -------------------------------------------------------------------------------------

def test_full_crop_views_are_the_eight_symmetries_of_the_crop(images):
    crops, _ = random_crops(images, 32, 48, generator())
    plain = ViewSettings(scale=(1.0, 1.0), ratio=(1.0, 1.0), stain_scale=0.0, stain_shift=0.0, blur_p=0.0)
    views = random_views(crops, plain, generator(1))
    assert views.shape == crops.shape and views.dtype == torch.uint8
    seen = set()
    for crop, view in zip(crops, views):
        symmetries = [(k, m) for k in range(4) for m in (False, True)
                      if torch.equal(view, (crop.flip(2) if m else crop).rot90(k, dims=(1, 2)))]
        assert len(symmetries) >= 1
        seen.update(symmetries)
    assert len(seen) == 8  # every mirror and turn occurs


def test_views_are_random_resized_crops_within_the_crop(images):
    crops, _ = random_crops(images, 4, 48, generator())
    small = ViewSettings(scale=(0.25, 0.25), ratio=(1.0, 1.0), stain_scale=0.0, stain_shift=0.0, blur_p=0.0)
    first, second = random_views(crops, small, generator(1)), random_views(crops, small, generator(2))
    assert not torch.equal(first, second)
    # a quarter of the area blown up 2×: neighbouring pixels repeat, so the image is smoother than the crop
    roughness = lambda x: (x[..., 1:].float() - x[..., :-1].float()).abs().mean()  # noqa: E731
    assert roughness(first) < 0.7 * roughness(crops)


def test_per_image_blur_is_torchvisions_blur_image_by_image(images):
    x = images[0][:, :40, :40].float()[None].repeat(3, 1, 1, 1) / 255
    sigma = torch.tensor([0.0, 0.7, 2.0])
    ours = gaussian_blur(x, sigma, radius=6)
    torch.testing.assert_close(ours[0], x[0])  # sigma 0: unchanged
    for i in (1, 2):
        torch.testing.assert_close(ours[i], torchvision_blur(x[i], [13, 13], [float(sigma[i])] * 2), atol=1e-5, rtol=0)


def test_bad_view_settings_are_refused():
    with pytest.raises(ValueError, match="views need"):
        ViewSettings(scale=(0.5, 1.5))


# --- losses, against the papers' formulas written out term by term ----------------------------

def cosine(a, b) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def test_nt_xent_is_simclrs_equation_1():
    z = torch.randn(8, 5, generator=generator())
    tau, n = 0.5, 4
    terms = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(cosine(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        terms.append(-math.log(math.exp(cosine(z[i], z[j]) / tau) / denominator))
    assert nt_xent(z, tau).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_info_nce_is_mocos_equation_1():
    q, k, queue = (F.normalize(torch.randn(m, 5, generator=generator(m)), dim=1) for m in (3, 4, 6))
    q, k = q[:3], k[:3]
    tau = 0.2
    terms = [-math.log(math.exp(float(q[i] @ k[i]) / tau)
                       / (math.exp(float(q[i] @ k[i]) / tau) + sum(math.exp(float(q[i] @ n) / tau) for n in queue)))
             for i in range(3)]
    assert info_nce(q, k, queue, tau).item() == pytest.approx(sum(terms) / 3, rel=1e-5)


def test_byol_loss_is_the_squared_distance_of_unit_vectors():
    p, z = torch.randn(4, 5, generator=generator(1)), torch.randn(4, 5, generator=generator(2))
    expected = ((p / p.norm(dim=1, keepdim=True) - z / z.norm(dim=1, keepdim=True)) ** 2).sum(1).mean()
    assert regression_loss(p, z).item() == pytest.approx(expected.item(), rel=1e-5)


def test_barlow_twins_loss_is_zbontars_equation_1():
    z1, z2 = torch.randn(6, 4, generator=generator(1)), torch.randn(6, 4, generator=generator(2))
    lambd, n = 5e-3, 6
    a = (z1 - z1.mean(0)) / (z1.var(0, unbiased=False) + 1e-5).sqrt()
    b = (z2 - z2.mean(0)) / (z2.var(0, unbiased=False) + 1e-5).sqrt()
    c = [[sum(float(a[s, i] * b[s, j]) for s in range(n)) / n for j in range(4)] for i in range(4)]
    expected = sum((1 - c[i][i]) ** 2 for i in range(4)) + lambd * sum(c[i][j] ** 2 for i in range(4)
                                                                       for j in range(4) if i != j)
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(expected, rel=1e-5)
    assert barlow_twins_loss(z1, z1, lambd).item() < 0.1 * expected  # identical views: C near identity


def softmax(values, temperature) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def test_dino_loss_is_carons_cross_entropy_of_the_centred_sharpened_teacher_on_the_other_view():
    student, teacher = torch.randn(4, 3, generator=generator(1)), torch.randn(4, 3, generator=generator(2))
    center, tau_s, tau_t, n = [0.3, -0.2, 0.1], 0.1, 0.04, 2  # views of crop i at rows i and n + i
    terms = []
    for i in range(2 * n):
        other = (i + n) % (2 * n)  # the teacher's row i is the target of the student's other view
        target = softmax([float(t) - c for t, c in zip(teacher[i], center)], tau_t)
        prediction = softmax([float(s) for s in student[other]], tau_s)
        terms.append(-sum(p * math.log(q) for p, q in zip(target, prediction)))
    loss = dino_loss(student, teacher, torch.tensor(center), tau_s, tau_t)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_dino_teacher_entropy_reads_log_k_for_uniform_targets_and_0_for_one_hot_ones():
    center = torch.zeros(5)
    assert teacher_entropy(torch.full((4, 5), 0.3), center, 0.04).item() == pytest.approx(math.log(5))
    one_hot = torch.eye(5)[:4] * 10
    assert teacher_entropy(one_hot, center, 0.04).item() == pytest.approx(0, abs=1e-6)
    targets = softmax([1.0, 0.5, 0.0], 0.5)
    entropy = teacher_entropy(torch.tensor([[1.0, 0.5, 0.0]]), torch.zeros(3), 0.5).item()
    assert entropy == pytest.approx(-sum(p * math.log(p) for p in targets), rel=1e-5)


def test_dino_head_batch_norm_follows_each_hidden_layer_in_student_and_teacher():
    plain, normed = DINOHead(5, 16, 4, 7), DINOHead(5, 16, 4, 7, batch_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    assert [m.num_features for m in normed.modules() if isinstance(m, torch.nn.BatchNorm1d)] == [16, 16]
    dino = DINO((3, 8), crop=16, hidden_dim=16, bottleneck_dim=4, prototypes=7, head_batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in dino.target_projector.modules()) == 2


def test_dino_center_follows_every_teacher_output_with_momentum_0_9():
    dino = DINO((3, 8), crop=16, hidden_dim=8, bottleneck_dim=4, prototypes=3)
    first, second = torch.randn(4, 3, generator=generator(1)), torch.randn(6, 3, generator=generator(2))
    dino.update_center(first)
    dino.update_center(second)
    torch.testing.assert_close(dino.center, 0.9 * 0.1 * first.mean(0) + 0.1 * second.mean(0))


def test_dino_prototypes_are_unit_rows_so_scores_are_cosines():
    head = DINOHead(5, 16, 4, 7)
    x = torch.randn(3, 5, generator=generator())
    scores = head(x)
    with torch.no_grad():
        head.prototypes.mul_(torch.arange(1.0, 8.0)[:, None])  # weight norm: a prototype's length is no parameter
    torch.testing.assert_close(head(x), scores)
    assert scores.abs().max() <= 1


def test_dino_teacher_temperature_warms_up_over_30_percent_of_the_steps_then_stays():
    dino = DINO((3, 8), crop=16, hidden_dim=8, bottleneck_dim=4, prototypes=3)
    encoder = torch.nn.Linear(3, 8)
    dino.init_encoder(encoder)
    temperatures = [float(dino.teacher_temperature())]
    for step in range(1, 11):
        dino.after_step(encoder, step, 10)
        temperatures.append(float(dino.teacher_temperature()))
    assert temperatures == pytest.approx([0.04, 0.05, 0.06, 0.07, *[0.07] * 7])


def test_the_queue_is_a_ring_of_the_newest_keys():
    moco = MoCoV2((3, 8), crop=16, dim=6, queue=5)
    keys = torch.randn(7, 6, generator=generator())
    moco.enqueue(keys[:3])
    moco.enqueue(keys[3:])
    torch.testing.assert_close(moco.queue, torch.cat([keys[5:], keys[2:5]]))
    assert int(moco.queue_next) == 2


# --- momentum copies and the after_step hook ---------------------------------------------------

def test_momentum_update_moves_the_target_one_step_of_one_minus_m():
    encoder = build_encoder(RESNET18)
    byol = BYOL(encoder.out_channels, crop=32, hidden_dim=16, dim=8, momentum=0.9)
    byol.init_encoder(encoder)
    before = {k: v.clone() for k, v in byol.target_encoder.state_dict().items()}
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    byol.after_step(encoder, 0, 10)  # cosine schedule at step 0: m = τ_base
    for key, value in byol.target_encoder.named_parameters():
        torch.testing.assert_close(value, before[key] + 0.1 * 1.0)
    assert byol.momentum(10, 10) == 1.0 and byol.momentum(5, 10) == pytest.approx(0.95)
    assert all(not p.requires_grad for p in [*byol.target_encoder.parameters(), *byol.target_projector.parameters()])


def test_dino_trains_the_student_alone_and_its_teacher_follows_on_byols_schedule(images):
    encoder = build_encoder(RESNET18)
    dino = DINO(encoder.out_channels, crop=32, hidden_dim=16, bottleneck_dim=8, prototypes=12)
    dino.init_encoder(encoder)
    dino(encoder, dino.sample(images, 2, generator()))["loss"].backward()
    teacher = [*dino.target_encoder.parameters(), *dino.target_projector.parameters()]
    assert all(p.grad is None and not p.requires_grad for p in teacher)
    assert all(p.grad is not None for p in [*encoder.parameters(), *dino.projector.parameters()])
    before = dino.target_projector.prototypes.clone()
    with torch.no_grad():
        dino.projector.prototypes.add_(1.0)
    dino.after_step(encoder, 0, 10)
    torch.testing.assert_close(dino.target_projector.prototypes, before + 0.004 * 1.0)
    assert dino.momentum(0, 10) == pytest.approx(0.996) and dino.momentum(10, 10) == 1.0


def test_after_step_runs_once_per_taken_optimizer_step():
    weight = torch.nn.Parameter(torch.ones(1))
    losses = iter([1.0, float("nan"), 1.0, 1.0])
    calls = []
    train(torch.nn.ParameterList([weight]), lambda: {"loss": weight.sum() * next(losses)},
          LoopSettings(steps=4, lr=0.1, log_every=1, max_nonfinite_skips=1), torch.device("cpu"), "hook",
          after_step=calls.append)
    assert calls == [1, 3, 4]  # step 2's loss was NaN: skipped, so no momentum update either


@pytest.mark.parametrize("name", ["moco_v2", "byol", "dino"])
def test_pretraining_trains_the_online_encoder_and_keeps_the_momentum_copy_in_the_pretext(name):
    cfg = resolve_run_config(name, preset="smoke", backbone="resnet18",
                             overrides=["pretrain.steps=2", "pretrain.batch_size=2", "pretext.crop=32"])
    torch.manual_seed(0)
    encoder = build_encoder(cfg.backbone)
    start = {k: v.clone() for k, v in encoder.state_dict().items()}
    pretext, history = pretrain(cfg, encoder, Synthetic(num_images=2, size=64).load(), torch.device("cpu"), generator())
    assert len(history) == 1 and math.isfinite(history[0]["loss"])
    exported = encoder.state_dict()  # what pretrain_phase saves as encoder.safetensors
    assert exported.keys() == build_encoder(cfg.backbone).state_dict().keys()
    assert not torch.equal(exported["layer4.1.conv2.weight"], start["layer4.1.conv2.weight"])  # trained
    target = pretext.target_encoder.state_dict()
    assert not torch.equal(target["layer4.1.conv2.weight"], exported["layer4.1.conv2.weight"])  # lags behind
    assert any(k.startswith("target_encoder.") for k in pretext.state_dict())  # checkpointed with the pretext


class Interrupted(Exception):
    """Stands in for a kill between two steps."""


#: the state each momentum pretext keeps beside its target, and small sizes for it
MOMENTUM_STATE = {"moco_v2": ({"queue", "queue_next"}, ["pretext.queue=6"]),
                  "dino": ({"center", "progress"}, ["pretext.hidden_dim=32", "pretext.prototypes=16"])}


def momentum_pretraining(name, path, seed=0, stop_after=None):
    cfg = resolve_run_config(name, preset="smoke", backbone="resnet18", seed=seed, overrides=[
        "pretrain.steps=4", "pretrain.batch_size=2", "pretrain.log_every=1", "pretext.crop=32",
        *MOMENTUM_STATE[name][1]])
    generator = seed_everything(seed)
    encoder = build_encoder(cfg.backbone)

    def stop(step):
        if step == stop_after:
            raise Interrupted

    pretext, history = pretrain(cfg, encoder, Synthetic(num_images=2, size=48).load(), torch.device("cpu"),
                                generator, Checkpoint(path, 2, {"seed": 0}, generator), on_step=stop)
    return history, {**{f"encoder.{k}": v for k, v in encoder.state_dict().items()}, **pretext.state_dict()}


@pytest.mark.parametrize("name", sorted(MOMENTUM_STATE))
def test_a_resumed_momentum_pretraining_continues_its_target_and_state_exactly(tmp_path, name):
    expected_history, expected = momentum_pretraining(name, tmp_path / "a.safetensors")
    with pytest.raises(Interrupted):
        momentum_pretraining(name, tmp_path / "b.safetensors", stop_after=3)  # step 2 was checkpointed
    history, state = momentum_pretraining(name, tmp_path / "b.safetensors", seed=99)  # the checkpoint wins
    assert history == expected_history
    assert {*MOMENTUM_STATE[name][0], "target_encoder.conv1.weight"} <= state.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


# --- torchrun ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_batch_wide_losses_under_torchrun_equal_one_process_on_the_whole_batch(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(Path(__file__).parent / "ddp_siamese_worker.py"), str(tmp_path / "seen.json")],
                            capture_output=True, text=True, timeout=600, env=torchrun_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = json.loads((tmp_path / "seen.json").read_text())
    first, second, keys = siamese_problem()

    z = torch.cat([first, second]).requires_grad_()
    single = nt_xent(z, temperature=0.5)
    single.backward()
    # the mean of the ranks' losses (what DDP logs) is the loss of all 8 crops ...
    assert np.mean([r["simclr"] for r in ranks]) == pytest.approx(single.item(), rel=1e-6)
    # ... and each rank's gradient, averaged over 2 processes as DDP does, is the single process's
    for rank, seen in enumerate(ranks):
        rows = [*range(4 * rank, 4 * rank + 4), *range(8 + 4 * rank, 8 + 4 * rank + 4)]
        np.testing.assert_allclose(np.array(seen["simclr_grad"]) / 2, z.grad[rows].numpy(), rtol=1e-5, atol=1e-7)

    z1, z2 = first.clone().requires_grad_(), second.clone().requires_grad_()
    single = barlow_twins_loss(z1, z2, lambd=5e-3)
    single.backward()
    for rank, seen in enumerate(ranks):
        assert seen["barlow"] == pytest.approx(single.item(), rel=1e-6)
        mine = slice(4 * rank, 4 * rank + 4)
        np.testing.assert_allclose(np.array(seen["barlow_grad"]) / 2, torch.cat([z1.grad[mine], z2.grad[mine]]).numpy(),
                                   rtol=1e-4, atol=1e-6)

    moco = MoCoV2((3, 8), crop=16, dim=keys.shape[1], queue=12)
    moco.enqueue(keys)
    for seen in ranks:  # every rank queued everyone's keys, in rank order: one process's queue
        np.testing.assert_allclose(np.array(seen["queue"])[:8], keys.numpy(), rtol=1e-6)
        assert seen["queue_next"] == 8

    dino = DINO((3, 8), crop=16, hidden_dim=8, bottleneck_dim=4, prototypes=first.shape[1])
    dino.update_center(torch.cat([first, second]))
    for seen in ranks:  # every rank's center moved by the mean of all ranks' teacher outputs
        np.testing.assert_allclose(seen["dino_center"], dino.center.numpy(), rtol=1e-6)
