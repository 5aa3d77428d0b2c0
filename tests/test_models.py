import pytest
import torch

from sslbench.models import build_encoder, build_segmenter, transfer_encoder

BACKBONE = dict(type="SmpEncoder", name="resnet18")
HEAD = dict(type="Unet", classes=3, decoder_channels=(64, 32, 16, 16, 8))


def test_pretrained_encoder_transfers_key_for_key_and_decoder_stays_fresh():
    torch.manual_seed(0)
    encoder = build_encoder(BACKBONE)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)  # differ from any fresh init
    model = build_segmenter(BACKBONE, HEAD, encoder.state_dict())
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    fresh = build_segmenter(BACKBONE, HEAD)
    assert set(fresh.state_dict()) == set(model.state_dict())
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_resunet101_is_the_papers_model():
    model = build_segmenter(dict(type="SmpEncoder", name="resnet101"), dict(type="Unet", classes=3))
    assert len(model.encoder.layer3) == 23  # ResNet-101: 3-4-23-3 bottlenecks
    assert model.segmentation_head[0].out_channels == 3


def test_mismatched_weights_are_refused_not_skipped():
    encoder = build_encoder(BACKBONE)
    state = encoder.state_dict()
    missing = dict(state)
    missing.pop("conv1.weight")
    with pytest.raises(ValueError, match="missing.*conv1.weight"):
        transfer_encoder(missing, build_encoder(BACKBONE))
    with pytest.raises(ValueError, match="unexpected.*extra"):
        transfer_encoder({**state, "extra": torch.zeros(1)}, build_encoder(BACKBONE))
