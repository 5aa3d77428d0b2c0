"""Train from scratch: no pretraining (the paper's baseline row)."""

from sslbench.pretext.base import Pretext
from sslbench.registry import PRETEXTS


@PRETEXTS.register_module()
class Scratch(Pretext):
    """No pretraining: the encoder starts from random weights (train-from-scratch)."""

    pretrains = False
