"""Benchmark: `netcore.ip.parse` against the stdlib `ipaddress.ip_address`, same run.

Usage: python benchmarks/bench_ip.py [--repeat N] [--number N] [--limit RATIO]

Prints the median ns/op over several repeats for each short address and the ratio
netcore/ipaddress; exits 1 if any ratio exceeds the limit (2.0, the budget in the
`netcore.ip` brief), so CI can run it as a gate.
"""

from __future__ import annotations

import argparse
import ipaddress
import platform
import statistics
import sys
import timeit
from collections.abc import Callable

from netcore import ip

ADDRESSES = ("127.0.0.1", "::1", "2001:db8::1", "192.168.100.200")


def median_ns(call: Callable[[str], object], text: str, number: int, repeat: int) -> float:
    """Median over `repeat` runs of the mean ns per `call(text)` in a run of `number`."""
    timer = timeit.Timer("call(text)", globals={"call": call, "text": text})
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per case")
    parser.add_argument("--number", type=int, default=100_000, help="calls per timed run")
    parser.add_argument("--limit", type=float, default=2.0, help="maximum allowed ratio")
    args = parser.parse_args()

    print(f"{platform.python_implementation()} {platform.python_version()} on {sys.platform}")
    print(f"median of {args.repeat} runs x {args.number:,} calls\n")
    print(f"{'address':<18}{'netcore ns/op':>15}{'ipaddress ns/op':>17}{'ratio':>8}")
    worst = 0.0
    for text in ADDRESSES:
        # Warm both up once so first-call costs (caches, specialisation) are not timed.
        assert ip.parse(text).packed == ipaddress.ip_address(text).packed
        ours = median_ns(ip.parse, text, args.number, args.repeat)
        theirs = median_ns(ipaddress.ip_address, text, args.number, args.repeat)
        ratio = ours / theirs
        worst = max(worst, ratio)
        print(f"{text:<18}{ours:>15.0f}{theirs:>17.0f}{ratio:>8.2f}")
    verdict = "ok" if worst <= args.limit else "TOO SLOW"
    print(f"\nworst ratio {worst:.2f} (limit {args.limit:.2f}): {verdict}")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
