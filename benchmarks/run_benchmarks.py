"""Throughput benchmarks: the same code as ``neuroloop bench`` (see ``--help``).

python benchmarks/run_benchmarks.py --device cpu --sizes small full --batches 1 16 --peers reference brian2
"""

from neuroloop_gpu.bench.cli import main

if __name__ == "__main__":
    main()
