#!/usr/bin/env python3
"""Draws docs/bench-verify.svg from criterion's results, with the standard library only.

Reads every target/criterion/**/new/{benchmark,estimates}.json (or, with --interleaved FILE,
the interleaved run's medians, target/keyward-bench/interleaved-verify.json, written by
`KEYWARD_BENCH_INTERLEAVE=<rounds> cargo bench -p keyward-benches --bench verify`), keeps the
`verify/*` medians and draws one panel of horizontal bars per size (floor, peer and naive
baselines beside the engine's cases on each backend).

    python3 benches/chart.py [--interleaved FILE] [--criterion DIR] [--out docs/bench-verify.svg]
"""

import argparse
import json
import os
import sys
from xml.sax.saxutils import escape

# (function id in the `verify` group, label, colour)
SERIES = [
    ("floor", "floor (checksum + probe + blake3)", "#7f7f7f"),
    ("memory_hit", "keyward hit, memory", "#1f77b4"),
    ("memory_hit_with", "keyward hit, verify_with, memory", "#6baed6"),
    ("sled_hit", "keyward hit, sled", "#17becf"),
    ("memory_verify_for", "keyward verify_for, memory", "#aec7e8"),
    ("sled_verify_for", "keyward verify_for, sled", "#9edae5"),
    ("memory_wrong_secret", "wrong secret, memory", "#9467bd"),
    ("sled_wrong_secret", "wrong secret, sled", "#c5b0d5"),
    ("memory_unknown", "unknown key, memory", "#2ca02c"),
    ("sled_unknown", "unknown key, sled", "#98df8a"),
    ("memory_bad_checksum", "bad checksum, memory", "#bcbd22"),
    ("sled_bad_checksum", "bad checksum, sled", "#dbdb8d"),
    ("memory_malformed", "malformed, memory", "#8c564b"),
    ("sled_malformed", "malformed, sled", "#c49c94"),
    ("peer", "peer: prefixed-api-key", "#ff7f0e"),
    ("naive", "naive: SHA-256 hex → HashMap", "#d62728"),
]


def read_medians(root):
    """{full_id: median ns} for every benchmark under `root`."""
    out = {}
    for dirpath, dirnames, _ in os.walk(root):
        if os.path.basename(dirpath) != "new":
            continue
        try:
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        out[bench["full_id"]] = est["median"]["point_estimate"]
    return out


def human(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def read_interleaved(path):
    """{`verify/<case>/<n>`: median ns} from the interleaved run's JSON."""
    with open(path) as f:
        runs = json.load(f)
    return {
        f"verify/{case}/{n}": ns for n, cases in runs.items() for case, ns in cases.items()
    }


def draw(medians, source):
    sizes = sorted(
        {int(k.split("/")[2]) for k in medians if k.startswith("verify/") and k.count("/") == 2}
    )
    panels = []
    for n in sizes:
        rows = [
            (label, colour, medians[f"verify/{fid}/{n}"])
            for fid, label, colour in SERIES
            if f"verify/{fid}/{n}" in medians
        ]
        if rows:
            panels.append((n, rows))
    if not panels:
        sys.exit("no verify/* results under the criterion directory")

    width, label_w, bar_w, row_h, top = 900, 260, 520, 20, 50
    vmax = max(v for _, rows in panels for _, _, v in rows)
    height = top + sum(40 + row_h * len(rows) for _, rows in panels) + 40
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="22" font-size="16" font-weight="bold">'
        "keyward verify: median time per key (lower is better)</text>",
        f'<text x="10" y="40" fill="#555">{escape(source)}; random keys from a '
        "shuffled array; see docs/BENCHMARKS.md</text>",
    ]
    y = top
    for n, rows in panels:
        y += 28
        svg.append(
            f'<text x="10" y="{y}" font-size="14" font-weight="bold">'
            f"{n:,} credentials</text>"
        )
        y += 8
        for label, colour, v in rows:
            w = max(1.0, bar_w * v / vmax)
            svg.append(
                f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            )
            svg.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{colour}"/>'
            )
            svg.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{human(v)}</text>')
            y += row_h
        y += 4
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interleaved", help="chart this interleaved run instead of criterion")
    p.add_argument("--criterion", default=os.path.join(root, "target", "criterion"))
    p.add_argument("--out", default=os.path.join(root, "docs", "bench-verify.svg"))
    args = p.parse_args()
    if args.interleaved:
        medians = read_interleaved(args.interleaved)
        source = "medians of the interleaved run (all cases round-robin, same machine weather)"
    else:
        medians = read_medians(args.criterion)
        source = "criterion medians, same run"
    svg = draw(medians, source)
    with open(args.out, "w") as f:
        f.write(svg)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
