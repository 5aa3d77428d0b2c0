"""Run by tests/test_distributed.py under ``torchrun --nproc-per-node 2``: trains a small linear
model through sslbench's loop on rank-specific data and scores a seeded ResUNet with the sharded
evaluation; rank 0 writes what it saw to the JSON file named by argv[1]."""

import json
import sys

import torch

from sslbench.data.synthetic import Synthetic
from sslbench.engine import distributed
from sslbench.engine.accel import resolve
from sslbench.engine.loop import LoopSettings, train
from sslbench.eval.evaluate import evaluate
from sslbench.models import build_segmenter
from sslbench.pipeline.phases import inference, resolve_device

from ddp_reference import FP32, HEAD, BACKBONE, linear_problem  # noqa: E402  (beside this file)

device = resolve_device("cpu")  # joins the process group
try:
    model, inputs, targets = linear_problem()
    mine = slice(distributed.rank() * 4, distributed.rank() * 4 + 4)  # each rank its half of the batch
    history = train(model, lambda: {"loss": torch.nn.functional.mse_loss(model(inputs[mine]), targets[mine])},
                    LoopSettings(steps=3, lr=0.1, log_every=1), device, "ddp", accel=resolve(FP32, device))
    every_rank_weights = distributed.gather(model.weight.detach().tolist())

    torch.manual_seed(0)
    segmenter = build_segmenter(BACKBONE, HEAD)
    scores = evaluate(segmenter, Synthetic(num_images=3, size=96).load(), device, min_area=5, tile=96, overlap=0,
                      inference=inference())
    if distributed.is_main():
        json.dump({"world": distributed.world_size(), "history": history, "weights": every_rank_weights,
                   "scores": scores}, open(sys.argv[1], "w"))
finally:
    distributed.shutdown()
