import pytest
import torch

from sslbench.models import build_encoder, build_segmenter, transfer_encoder
from tiny import VIT_ONLY_PRETEXTS, WEIGHT_FILE_STRATEGIES

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


# --- backbones beyond ResNet: every pretext trains them, the ResUNet decodes them -----------------

CONVNEXT = dict(type="SmpEncoder", name="tu-convnext_atto")  # registry/backbone/convnext_atto.py


@pytest.fixture(scope="module")
def tiles():
    from sslbench.data.base import image_tensor
    from sslbench.data.synthetic import Synthetic

    return [image_tensor(s.image) for s in Synthetic(num_images=2, size=128, seed=0).load()]


def pretrainable_pretexts() -> list[str]:
    from sslbench.config import component_names

    return [n for n in component_names("pretext") if n not in ("scratch", *WEIGHT_FILE_STRATEGIES, *VIT_ONLY_PRETEXTS)]


@pytest.mark.parametrize("name", pretrainable_pretexts())
def test_every_pretext_trains_a_convnext_and_the_resunet_takes_it_key_for_key(tiles, name):
    from sslbench.config import resolve_run_config
    from sslbench.registry import PRETEXTS, build

    cfg = resolve_run_config(name, preset="smoke", backbone="convnext_atto")
    assert cfg.backbone == CONVNEXT
    torch.manual_seed(0)
    encoder = build_encoder(cfg.backbone)
    pretext = build(PRETEXTS, cfg.pretext, encoder_channels=encoder.out_channels)
    pretext.init_encoder(encoder)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    optimizer = torch.optim.SGD([*encoder.parameters(), *pretext.parameters()], lr=0.1)
    loss = pretext(encoder, pretext.sample(tiles, 2, torch.Generator().manual_seed(0)))["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in encoder.state_dict().items()), "the pretext trained nothing"
    model = build_segmenter(cfg.backbone, cfg.head, encoder.state_dict())
    for key, value in encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    logits = model(torch.zeros(2, 3, 64, 64))
    torch.nn.functional.cross_entropy(logits, torch.zeros(2, 64, 64, dtype=torch.long)).backward()
    assert model.segmentation_head[0].weight.grad.abs().sum() > 0


def test_the_head_is_built_around_the_encoder_it_receives():
    model = build_segmenter(CONVNEXT, HEAD)
    assert model.decoder.blocks[0].conv1[0].in_channels == 320 + 160  # convnext_atto's two deepest stages
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_any_smp_or_timm_encoder_name_is_a_backbone_and_a_typo_is_named():
    from sslbench.config import component_config
    from sslbench.errors import UnknownComponentError

    assert component_config("backbone", "tu-resnet10t") == {"type": "SmpEncoder", "name": "tu-resnet10t"}
    assert component_config("backbone", "resnet34") == {"type": "SmpEncoder", "name": "resnet34"}
    with pytest.raises(UnknownComponentError, match="unknown backbone 'convnext_ato'.*convnext_atto"):
        component_config("backbone", "convnext_ato")
