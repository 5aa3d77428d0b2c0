"""Where training batches are made: on the training device from images uploaded once (the fast
path), or in CPU DataLoader workers for data that does not fit on the device.

Both paths run the same sampler function ``sample(images, batch_size, generator)``: a pretext
task's ``sample`` or the finetuning sampler. Only the device of the source tensors differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

Sampler = Callable[[Sequence[torch.Tensor], int, torch.Generator], object]

#: the device path is taken while the uploaded images use at most this share of free GPU memory
DEVICE_DATA_SHARE = 0.25


class _Batches(IterableDataset):
    """Endless batches from CPU tensors; each worker draws from its own seeded stream."""

    def __init__(self, sample: Sampler, images: Sequence[torch.Tensor], batch_size: int, seed: int):
        self.sample, self.images, self.batch_size, self.seed = sample, images, batch_size, seed

    def __iter__(self) -> Iterator:
        worker = get_worker_info()
        generator = torch.Generator().manual_seed(self.seed + (worker.id if worker else 0))
        while True:
            yield self.sample(self.images, self.batch_size, generator)


def fits_on_device(images: Sequence[torch.Tensor], device: torch.device) -> bool:
    if device.type != "cuda":
        return True  # CPU training: the "device" is host memory already
    free, _ = torch.cuda.mem_get_info(device)
    return sum(image.nbytes for image in images) <= DEVICE_DATA_SHARE * free


def to_device(batch, device: torch.device):
    """Tensors of a (nested) batch moved to ``device``; pinned memory makes the copy asynchronous."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def batch_source(sample: Sampler, images: Sequence[torch.Tensor], batch_size: int, device: torch.device,
                 generator: torch.Generator, on_device: bool | str = "auto", workers: int = 4) -> Callable[[], object]:
    """A function returning the next batch on ``device``.

    ``images`` are CPU uint8 tensors. ``on_device`` True: upload them once and sample on the device
    with ``generator``; False: sample in ``workers`` DataLoader processes (seeded from
    ``generator``), copy each batch over; "auto": the device path when the images fit.
    The worker path's crops are reproducible for a fixed worker count but do not follow
    ``generator`` step by step, so a resumed run is not bit-identical to an uninterrupted one.
    """
    if on_device == "auto":
        on_device = fits_on_device(images, device)
    if on_device:
        pool = [image.to(device) for image in images]
        return lambda: sample(pool, batch_size, generator)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    loader = DataLoader(_Batches(sample, images, batch_size, seed), batch_size=None, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    batches = iter(loader)
    return lambda: to_device(next(batches), device)
