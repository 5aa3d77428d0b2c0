"""The documents quote the presets they describe: a preset change that leaves them behind fails here."""

from pathlib import Path

from sslbench.config import load_component

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_deviations_quote_the_cpu_presets_stain_jitter_and_rescaling():
    finetune = load_component("preset", "cpu")["finetune"]
    deviations = " ".join((DOCS / "deviations.md").read_text().split())
    assert f"`cpu` finetunes with `stain_scale={finetune['stain_scale']}, stain_shift={finetune['stain_shift']}`" \
        in deviations
    low, high = finetune["scale"]
    assert f"s ~ U({low}, {high})" in deviations
