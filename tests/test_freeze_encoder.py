"""The frozen-encoder protocol (``finetune.freeze_encoder``): the decoder trains, the encoder's weights
and BatchNorm statistics do not move; without it they do."""

from __future__ import annotations

import pytest
import torch

from sslbench.config import resolve_run_config
from sslbench.data.synthetic import Synthetic
from sslbench.models import build_segmenter
from sslbench.pipeline.data import DataSplit
from sslbench.pipeline.phases import finetune

TINY = ["finetune.steps=3", "finetune.batch_size=2", "finetune.crop=64", "finetune.eval_every=0",
        "finetune.checkpoint_every=0", "finetune.lr=0.01", "head.decoder_channels=(16, 16, 8, 8, 8)"]


def states_after_finetuning(freeze: bool) -> tuple[dict, dict, torch.nn.Module]:
    """The model's state before and after a few finetuning steps, and the model."""
    cfg = resolve_run_config("scratch", backbone="resnet18", device="cpu",
                             overrides=[*TINY, f"finetune.freeze_encoder={freeze}"])
    torch.manual_seed(0)
    model = build_segmenter(cfg.backbone, cfg.head)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    samples = Synthetic(num_images=2, size=96, seed=0).load()
    finetune(cfg, model, DataSplit(train=samples, val=[], test=[]), torch.device("cpu"),
             torch.Generator().manual_seed(0))
    return before, model.state_dict(), model


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_encoder_keeps_its_weights_and_bn_statistics_bit_identical(freeze):
    before, after, model = states_after_finetuning(freeze)
    encoder = [k for k in after if k.startswith("encoder.")]
    running = [k for k in encoder if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in encoder if k.endswith(".weight")]
    decoder = [k for k in after if not k.startswith("encoder.")]
    assert running and weights and decoder

    def moved(keys):
        return [k for k in keys if not torch.equal(before[k], after[k])]

    assert moved(decoder)
    if freeze:
        assert moved(encoder) == [] and not model.encoder.training
    else:
        assert moved(running) == running and moved(weights) and model.encoder.training


def test_freeze_encoder_changes_the_job_key():
    from sslbench.bench.plan import BenchOptions, job_keys
    from sslbench.bench.suites import Job, load_suite

    keys = {}
    for freeze in (False, True):
        opts = BenchOptions(load_suite("table1"), None, backbone="resnet18",
                            overrides=[f"finetune.freeze_encoder={freeze}"])
        job = Job("scratch", 1.0, None, 0)
        keys[freeze] = job_keys(resolve_run_config("scratch", backbone="resnet18",
                                                   overrides=opts.overrides), opts, job)
    assert keys[False][0] != keys[True][0]  # the finetuning job differs
    assert keys[False][1] == keys[True][1]  # its pretrained encoder is the same one
