"""Speed and accuracy of backtracking through the JF12 galactic field.

Two figures:

1. Speed: trajectories per second of ``cosmic_rays.propagation.backtrack`` for every
   pixel centre of a HEALPix grid at the rigidities of the default lens (14 log-spaced
   bins from 40 to 316 EV, backtracked at the bin centres), and the time for that lens.
2. Accuracy: the angle between the exit directions found with the default step and
   with a step four times finer, over the sky, next to the deflection itself.

Usage::

    python benchmarks/propagation_speed.py                  # full nside-64 lens timing
    python benchmarks/propagation_speed.py --pixel-stride 8 # every 8th pixel, quicker

With ``--pixel-stride k`` only every k-th pixel is timed and the lens time is scaled up
by k; throughput is lower on small sets, so the estimate errs on the slow side.
"""

import argparse
import os
import sys
import time

import healpy as hp
import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

from cosmic_rays.galactic_field import JF12  # noqa: E402
from cosmic_rays.propagation import (  # noqa: E402
    backtrack,
    default_step_kpc,
    deflection_angle,
)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nside", type=int, default=64, help="lens grid (default 64)")
    parser.add_argument(
        "--bins", type=int, default=14, help="rigidity bins (default 14)"
    )
    parser.add_argument(
        "--min-ev", type=float, default=40.0, help="lowest rigidity, EV"
    )
    parser.add_argument(
        "--max-ev", type=float, default=10**2.5, help="highest rigidity, EV"
    )
    parser.add_argument(
        "--pixel-stride", type=int, default=1, help="time every k-th pixel only"
    )
    parser.add_argument(
        "--error-nside", type=int, default=16, help="grid for the accuracy figure"
    )
    parser.add_argument(
        "--skip-error", action="store_true", help="only the speed figure"
    )
    return parser.parse_args()


def sky_grid(nside, stride=1):
    pixels = np.arange(0, hp.nside2npix(nside), stride)
    return np.array(hp.pix2vec(nside, pixels)).T


def main():
    args = parse_arguments()
    field = JF12()
    edges_ev = np.geomspace(args.min_ev, args.max_ev, args.bins + 1)
    centres_ev = np.sqrt(edges_ev[:-1] * edges_ev[1:])
    directions = sky_grid(args.nside, args.pixel_stride)
    n_pixels = hp.nside2npix(args.nside)

    print(
        f"speed: nside {args.nside}, {len(directions)} of {n_pixels} pixels, "
        f"{args.bins} rigidities {centres_ev[0]:.0f}-{centres_ev[-1]:.0f} EV, "
        f"{os.cpu_count()} CPU(s) visible"
    )
    print(f"{'R (EV)':>8} {'step (kpc)':>10} {'time (s)':>9} {'trajectories/s':>15}")
    total_s = 0.0
    for rigidity_ev in centres_ev:
        start = time.perf_counter()
        backtrack(directions, rigidity_ev, field)
        elapsed_s = time.perf_counter() - start
        total_s += elapsed_s
        print(
            f"{rigidity_ev:8.1f} {float(default_step_kpc(rigidity_ev)):10.3f} "
            f"{elapsed_s:9.2f} {len(directions) / elapsed_s:15.0f}"
        )
    n_trajectories = len(directions) * len(centres_ev)
    print(
        f"all: {n_trajectories} trajectories in {total_s:.1f} s = "
        f"{n_trajectories / total_s:.0f} trajectories/s"
    )
    print(
        f"lens time (nside {args.nside}, {args.bins} bins): "
        f"{total_s * n_pixels / len(directions):.1f} s"
        + (" (scaled from the subset)" if args.pixel_stride > 1 else "")
    )
    if args.skip_error:
        return

    grid = sky_grid(args.error_nside)
    print(
        f"\naccuracy: nside {args.error_nside} ({len(grid)} directions), default step "
        "against a step 4 times finer; angles in degrees"
    )
    print(
        f"{'R (EV)':>8} {'deflection median':>18} "
        f"{'error median':>13} {'error p99':>10} {'error max':>10}"
    )
    for rigidity_ev in (centres_ev[0], 100.0, centres_ev[-1]):
        step_kpc = float(default_step_kpc(rigidity_ev))
        coarse = backtrack(grid, rigidity_ev, field)
        fine = backtrack(grid, rigidity_ev, field, step_kpc=step_kpc / 4)
        deflection_deg = np.degrees(deflection_angle(grid, fine))
        error_deg = np.degrees(deflection_angle(coarse, fine))
        print(
            f"{rigidity_ev:8.1f} {np.median(deflection_deg):18.2f} "
            f"{np.median(error_deg):13.4f} {np.percentile(error_deg, 99):10.4f} "
            f"{error_deg.max():10.4f}"
        )


if __name__ == "__main__":
    main()
