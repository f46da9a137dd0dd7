#!/usr/bin/env python3
"""The node suite's results as the README shows them: a table per engine and scenario, and
a chart (SVG) of every run, both made from the JSON lines the suite wrote.

  python3 e2e-tests/node/report.py RESULTS.jsonl [--readme README.md] [--svg FILE]

--readme rewrites the part of README.md between the `node-results` markers; --svg writes
the chart. `make node-report` runs it on the committed results (e2e-tests/node/results/).
"""

import argparse
import json
import statistics
import sys
from collections import OrderedDict

START = "<!-- node-results:start (make node-report writes this table) -->"
END = "<!-- node-results:end -->"


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    return runs


def by_scenario(runs):
    """Runs grouped by (engine, scenario), in the order they were run."""
    groups = OrderedDict()
    for r in runs:
        groups.setdefault((r.get("engine", ""), r["scenario"]), []).append(r)
    return groups


def spread(values, unit="s"):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f} {unit}"
    return f"{min(values):.1f}–{max(values):.1f} {unit} (median {statistics.median(values):.1f})"


def restarts(group):
    return ", ".join(str(r["server_restarts_at_ready"]) if r["ready"] else "never Ready"
                     for r in group)


def table(runs):
    lines = ["| scenario | runs | server restarts at Ready | time to Ready | "
             "Ready after the model was on the node | model pull (kubelet) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for (_, scenario), group in by_scenario(runs).items():
        ready = [r for r in group if r["ready"]]
        lines.append(
            f"| {scenario} | {len(group)} | {restarts(group)} | "
            f"{spread([r['seconds_to_ready'] for r in ready])} | "
            f"{spread([r.get('seconds_model_to_ready') for r in ready])} | "
            f"{spread([r['model_pull_seconds'] for r in group])} |")
    return "\n".join(lines)


def machine_line(runs):
    first = runs[0] if runs else {}
    engines = sorted({r.get("engine", "?") for r in runs})
    return (f"{len(runs)} pods, {', '.join(engines)}, kubelet and kube-apiserver "
            f"{first.get('kubelet', '?')}, containerd {first.get('containerd', '?')}, "
            f"model {first.get('model_mib', '?')} MiB at {first.get('rate_mib', '?')} MiB/s; "
            f"{first.get('machine', 'machine not recorded')}; {first.get('date', '')}")


def readme_block(runs):
    return f"{START}\n{machine_line(runs)}\n\n{table(runs)}\n{END}"


def rewrite_readme(path, runs):
    with open(path) as f:
        text = f.read()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no {START} ... {END} block")
    with open(path, "w") as f:
        f.write(text[:start] + readme_block(runs) + text[end + len(END):])


# --- the chart: one row per scenario, every run a bar from creation to Ready ---------------

BAR, LEFT, RIGHT, TOP = 5, 520, 110, 56
COLOURS = {"pull": "#9ecae1", "after": "#3182bd", "restart": "#d62728", "never": "#bbbbbb"}


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def restart_label(group):
    """The chart's right-hand label: restarts per run, or how many never got Ready."""
    if not any(r["ready"] for r in group):
        return "never Ready"
    return restarts(group)


def svg(runs):
    groups = [(s, g) for (_, s), g in by_scenario(runs).items()]
    # Every run gets its bar: a row is as tall as the scenario with the most runs needs.
    row = max(len(g) for _, g in groups) * (BAR + 1) + 8
    # Pods that never got Ready run off the scale: it ends after the slowest Ready one.
    longest = max([r["seconds_to_ready"] for r in runs if r["ready"]] + [10])
    scale_max = (int(longest) // 10 + 1) * 10
    width = LEFT + 420 + RIGHT
    height = TOP + row * len(groups) + 64
    x = lambda s: LEFT + 420 * s / scale_max  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="20" font-size="14" font-weight="bold">Seconds from pod creation '
           'to Ready, one bar per run (node suite)</text>',
           f'<text x="10" y="38" fill="#555">{_escape(machine_line(runs))}</text>']
    for s in range(0, scale_max + 1, 10):
        out.append(f'<line x1="{x(s):.1f}" y1="{TOP - 6}" x2="{x(s):.1f}" '
                   f'y2="{TOP + row * len(groups)}" stroke="#eee"/>')
        out.append(f'<text x="{x(s):.1f}" y="{TOP + row * len(groups) + 14}" '
                   f'text-anchor="middle" fill="#555">{s}</text>')
    for i, (scenario, group) in enumerate(groups):
        y0 = TOP + row * i
        out.append(f'<text x="{LEFT - 8}" y="{y0 + row / 2 + 4:.1f}" text-anchor="end">'
                   f'{_escape(scenario[:80])}</text>')
        for j, r in enumerate(group):
            y = y0 + 4 + j * (BAR + 1)
            end = r["seconds_to_ready"] if r["ready"] else scale_max
            model = r.get("seconds_to_model_started")
            if not r["ready"]:
                out.append(f'<rect x="{x(0):.1f}" y="{y}" width="{x(end) - x(0):.1f}" '
                           f'height="{BAR}" fill="{COLOURS["never"]}"/>')
                continue
            split = model if model is not None and model <= end else end
            out.append(f'<rect x="{x(0):.1f}" y="{y}" width="{x(split) - x(0):.1f}" '
                       f'height="{BAR}" fill="{COLOURS["pull"]}"/>')
            out.append(f'<rect x="{x(split):.1f}" y="{y}" width="{x(end) - x(split):.1f}" '
                       f'height="{BAR}" fill="{COLOURS["restart"] if r["server_restarts_at_ready"] else COLOURS["after"]}"/>')
        out.append(f'<text x="{width - RIGHT + 8}" y="{y0 + row / 2 + 4:.1f}" '
                   f'fill="#555">{_escape(restart_label(group))}</text>')
    legend = [("pull", "until the model image is on the node"),
              ("after", "then to Ready, the model server never restarted"),
              ("restart", "then to Ready, the model server restarted (restarts per run, right)"),
              ("never", "never Ready")]
    for i, (key, text) in enumerate(legend):
        lx, ly = 10 + (i % 2) * 420, TOP + row * len(groups) + 36 + (i // 2) * 16
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{COLOURS[key]}"/>')
        out.append(f'<text x="{lx + 16}" y="{ly}">{_escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--readme", help="rewrite the node-results block of this README")
    parser.add_argument("--svg", help="write the chart to this file")
    args = parser.parse_args()
    runs = load(args.results)
    if not runs:
        raise SystemExit(f"{args.results} holds no results")
    if args.readme:
        rewrite_readme(args.readme, runs)
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(runs))
    if not args.readme and not args.svg:
        print(readme_block(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
