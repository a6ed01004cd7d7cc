"""Wall-clock time to build the default lens and to simulate the 50 000-map data set.

Usage (from the repository root)::

    python benchmarks/simulate_speed.py       # lens from scratch, then 50 000 maps
    python benchmarks/simulate_speed.py --maps 10000 --skip-lens

Both are timed in a temporary folder: the lens is built afresh (not read from the packaged
copy or the cache) unless ``--skip-lens``, in which case the usual lookup is used and only
the maps are timed. The map time includes writing the .npz file. Targets of issue 3 on a
2-core machine: lens under 3 minutes, 50 000 maps under 1 minute.
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cosmic_rays.dataset import simulate_cr_sphere  # noqa: E402
from cosmic_rays.lens import build_lens, load_or_build_lens  # noqa: E402
from cosmic_rays.skymaps import SkyMapParameters  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=50000)
    parser.add_argument(
        "--skip-lens",
        action="store_true",
        help="do not time a fresh lens build; use the cached lens",
    )
    arguments = parser.parse_args()

    parameters = SkyMapParameters()
    with tempfile.TemporaryDirectory() as folder:
        if arguments.skip_lens:
            lens = load_or_build_lens(parameters.lens_nside)
        else:
            start = time.perf_counter()
            lens = build_lens(parameters.lens_nside)
            lens_s = time.perf_counter() - start
            print(
                f"lens: nside {lens.nside}, {lens.n_bins} rigidity bins, "
                f"{len(lens.directions[0])} pixels: {lens_s:.1f} s"
            )

        start = time.perf_counter()
        simulate_cr_sphere(
            Path(folder) / "maps.npz",
            arguments.maps,
            seed=1,
            parameters=parameters,
            lens=lens,
        )
        maps_s = time.perf_counter() - start
        size_mb = (Path(folder) / "maps.npz").stat().st_size / 1e6

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(
        f"sky maps: {arguments.maps} maps of {parameters.n_events} events: "
        f"{maps_s:.1f} s, file {size_mb:.0f} MB, peak memory {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
