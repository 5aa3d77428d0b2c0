"""Run by tests/test_siamese.py under ``torchrun --nproc-per-node 2``: each rank computes the
batch-wide losses (NT-Xent, Barlow Twins) on its half of fixed embeddings, fills a MoCo queue with
its half of the keys and moves a DINO center with its half of the teacher outputs; rank 0 writes every rank's losses, gradients and queue to the JSON file in argv[1]."""

import json
import sys

import torch

from sslbench.engine import distributed
from sslbench.pipeline.phases import resolve_device
from sslbench.pretext.barlow_twins import barlow_twins_loss
from sslbench.pretext.dino import DINO
from sslbench.pretext.moco_v2 import MoCoV2
from sslbench.pretext.simclr import nt_xent

from ddp_reference import siamese_problem  # noqa: E402  (beside this file)

resolve_device("cpu")  # joins the process group
try:
    first, second, keys = siamese_problem()
    half = len(first) // 2
    mine = slice(distributed.rank() * half, distributed.rank() * half + half)  # each rank its half of the crops
    z = torch.cat([first[mine], second[mine]]).requires_grad_()
    simclr = nt_xent(z, temperature=0.5)
    simclr.backward()
    z1, z2 = first[mine].clone().requires_grad_(), second[mine].clone().requires_grad_()
    barlow = barlow_twins_loss(z1, z2, lambd=5e-3)
    barlow.backward()
    moco = MoCoV2((3, 8), crop=16, dim=keys.shape[1], queue=12)
    moco.enqueue(keys[mine])
    dino = DINO((3, 8), crop=16, hidden_dim=8, bottleneck_dim=4, prototypes=keys.shape[1])
    dino.update_center(torch.cat([first[mine], second[mine]]))
    seen = distributed.gather({"simclr": simclr.item(), "simclr_grad": z.grad.tolist(), "barlow": barlow.item(),
                               "barlow_grad": torch.cat([z1.grad, z2.grad]).tolist(),
                               "queue": moco.queue.tolist(), "queue_next": int(moco.queue_next),
                               "dino_center": dino.center.tolist()})
    if distributed.is_main():
        json.dump(seen, open(sys.argv[1], "w"))
finally:
    distributed.shutdown()
