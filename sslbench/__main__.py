"""``python -m sslbench`` (and ``torchrun --nproc-per-node N -m sslbench run ...``)."""

from sslbench.cli import main

if __name__ == "__main__":
    main()
