"""All quick benchmarks in one go (`make bench`): rendering speed, model throughput, and
the config results table from whatever runs exist. Add --run-configs to train them (~1 h).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    import bench_configs
    import bench_model
    import bench_render

    print("## ASCII conversion speed\n")
    bench_render.main([])
    print("\n## Tiny-preset throughput\n")
    bench_model.main([])
    print("\n## Shipped CPU configs\n")
    bench_configs.main(["--run"] if "--run-configs" in sys.argv else [])


if __name__ == "__main__":
    main()
