"""Command line: ``python -m cosmic_rays simulate|lens ...`` (see ``--help``)."""

import argparse
import logging
import sys
import time

from cosmic_rays.files import remove_temporaries_on_sigterm
from cosmic_rays.skymaps import SkyMapParameters


def _parse_spectrum(text):
    try:
        return float(text)
    except ValueError:
        return text


def _parser():
    defaults = SkyMapParameters()
    parser = argparse.ArgumentParser(
        prog="python -m cosmic_rays",
        description="Simulate cosmic-ray sky maps deflected in the JF12 galactic field.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser(
        "simulate",
        help="write a cr_sphere.npz data set",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    simulate.add_argument("--maps", type=int, default=50000, help="number of maps")
    simulate.add_argument(
        "--out", default="data/cr_sphere.npz", help="output .npz file"
    )
    simulate.add_argument("--seed", type=int, default=1, help="random seed")
    simulate.add_argument("--force", action="store_true", help="overwrite --out")
    simulate.add_argument(
        "--events", type=int, default=defaults.n_events, help="cosmic rays per map"
    )
    simulate.add_argument(
        "--sources", type=int, default=defaults.n_sources, help="sources per signal map"
    )
    simulate.add_argument(
        "--signal-fraction",
        type=float,
        default=defaults.signal_fraction,
        help="fraction of a signal map's events from its sources",
    )
    simulate.add_argument(
        "--smearing",
        type=float,
        default=defaults.smearing_rad_at_10ev,
        help="random-field smearing (rad) at rigidity 10 EV",
    )
    simulate.add_argument(
        "--charge", type=int, default=defaults.charge, help="nuclear charge Z"
    )
    simulate.add_argument(
        "--threshold-eev",
        type=float,
        default=defaults.energy_threshold_eev,
        help="lowest energy, EeV",
    )
    simulate.add_argument(
        "--spectrum",
        type=_parse_spectrum,
        default=defaults.spectrum,
        help="'auger2020' or a power-law index",
    )
    simulate.add_argument(
        "--exposure",
        choices=("full", "auger"),
        default=defaults.exposure,
        help="sky coverage",
    )

    lens = commands.add_parser(
        "lens",
        help="build the lens and store it",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    lens.add_argument("--nside", type=int, default=defaults.lens_nside)
    lens.add_argument("--bins", type=int, default=defaults.lens_bins)
    lens.add_argument("--charge", type=int, default=1)
    lens.add_argument(
        "--out", default=None, help="folder for the lens file (default: DATA_DIR/lens)"
    )
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if arguments.command == "lens":
        from cosmic_rays.lens import default_rigidity_edges_ev, load_or_build_lens

        edges = default_rigidity_edges_ev(
            charge=arguments.charge, n_bins=arguments.bins
        )
        start = time.perf_counter()
        lens = load_or_build_lens(arguments.nside, edges, cache_dir=arguments.out)
        print(
            f"lens {lens.key}: nside {lens.nside}, {lens.n_bins} bins, "
            f"{time.perf_counter() - start:.1f} s"
        )
        return 0

    from cosmic_rays.dataset import simulate_cr_sphere

    try:
        parameters = SkyMapParameters(
            n_events=arguments.events,
            energy_threshold_eev=arguments.threshold_eev,
            spectrum=arguments.spectrum,
            charge=arguments.charge,
            n_sources=arguments.sources,
            signal_fraction=arguments.signal_fraction,
            smearing_rad_at_10ev=arguments.smearing,
            exposure=arguments.exposure,
        )
        start = time.perf_counter()
        simulate_cr_sphere(
            arguments.out,
            arguments.maps,
            arguments.seed,
            parameters,
            force=arguments.force,
        )
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {arguments.out}: {arguments.maps} maps in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    remove_temporaries_on_sigterm()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: no half-written file was left behind", file=sys.stderr)
        sys.exit(130)
