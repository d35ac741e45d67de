"""Load a full published list file and report what was read, how fast, and in how much memory.

    python -m screening.load SDN.XML --source ofac_sdn
    python -m screening.load consolidated.xml            # format sniffed from the root element
    python -m screening.load SDN.XML --screen "Muammar Gaddafi" --screen "Kim Jong Un"

Prints the party count, the publication date, the sha256 digest, parse and index timings, the
peak resident memory, and (with --screen) the hits for a few names.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter

from domain.errors import InvalidInput
from domain.screening import ListSource, ScreeningSubject
from screening.formats import load_list
from screening.matcher import Screener


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path")
    parser.add_argument("--source", choices=[s.value for s in ListSource], default=None)
    parser.add_argument("--screen", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        snapshot = load_list(args.source, args.path)
    except InvalidInput as error:
        print(f"refused: {error.detail}", file=sys.stderr)
        return 2
    parsed = time.perf_counter() - started
    kinds = Counter(p.kind.value for p in snapshot.parties)
    names = sum(len(p.names) for p in snapshot.parties)
    print(
        f"{snapshot.source.value}: {len(snapshot.parties)} parties ({dict(kinds)}), {names} names, "
        f"published {snapshot.published_at}, sha256 {snapshot.digest}"
    )
    print(f"parsed in {parsed:.2f} s")
    for note in snapshot.notes[:10]:
        print(f"  note: {note}")
    started = time.perf_counter()
    screener = Screener([snapshot])
    print(f"indexed in {time.perf_counter() - started:.2f} s")
    for name in args.screen:
        hits = screener.screen(ScreeningSubject(full_name=name))
        print(
            f"{name!r}: "
            + (
                ", ".join(f"{h.party_key} {h.listed_name!r} {h.score}" for h in hits[:5])
                or "no hit"
            )
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak resident memory {peak / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
