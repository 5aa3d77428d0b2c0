#!/usr/bin/env bash
# The GPU measurements of issues 7 and 8 for a session that is lent a GPU machine (the `device` tool).
#
#   bash benchmarks/gpu_check.sh prepare      # here, once: wheels the GPU image lacks + MoNuSeg as PNG (~50 MB)
#   bash benchmarks/gpu_check.sh throughput   # there (carry .gpu): naive vs fast path, paper sizes (~5 min)
#   bash benchmarks/gpu_check.sh mini         # there (carry .gpu): table3, mini preset, MoNuSeg train (goal < 8 min)
#
# Results land in $OUT (the device tool's return folder), or ./gpu-check elsewhere. Extra arguments go
# to gpu_throughput.py / sslbench bench (e.g. --set pretrain.steps=2 to rehearse on a CPU, with the
# project's venv first on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mode=${1:-}
shift || true

case "$mode" in
prepare)
    # the GPU image has torch, timm, rich, scikit-image, typer, cloudpickle ... but not these (all pure Python)
    grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
    ${PYTHON:-python} -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .gpu/whl segmentation-models-pytorch==0.6.0 mmengine==0.10.7 \
        addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0 submitit==1.5.4
    # LZW TIFFs + XML are 107 MB, over the 64 MiB a device call carries; lossless PNG + label maps fit
    [ -d .gpu/monuseg2018_train ] || ${PYTHON:-python} -m sslbench data convert ../shared/data/monuseg2018_train --out .gpu/monuseg2018_train
    du -sh .gpu
    exit 0 ;;
throughput|mini) ;;
*) echo "usage: bash benchmarks/gpu_check.sh prepare|throughput|mini [extra arguments]" >&2; exit 2 ;;
esac

[ -d .gpu/whl ] || { echo ".gpu/whl missing: run 'bash benchmarks/gpu_check.sh prepare' first and carry .gpu" >&2; exit 2; }
site=${SITE:-/tmp/sslbench-site}
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target "$site" . .gpu/whl/*.whl
export PYTHONPATH="$site" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$out"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true) > "$out/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__)" >> "$out/gpu.txt"

if [ "$mode" = throughput ]; then
    python3 benchmarks/gpu_throughput.py --compile --json "$out/throughput.json" "$@" 2>&1 | tee "$out/throughput.log"
else
    bench=${BENCH_DIR:-/tmp/gpu-check-mini}  # encoders and predictions stay there: at most 8 files come back
    start=$(date +%s)
    python3 -m sslbench bench --suite table3 --preset mini --data .gpu/monuseg2018_train --out "$bench" "$@" \
        2>&1 | tee "$out/mini.log"
    echo "table3 mini: $(( $(date +%s) - start )) s wall" | tee -a "$out/mini.log"
    python3 -m sslbench leaderboard --suite table3 --out "$bench" --format md > "$out/leaderboard-table3.md"
    cp "$bench/results.sqlite" "$out/"
fi
