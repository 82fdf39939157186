"""Benchmark: time to SSH and to cloud-init done, Slipway's fast first boot
against the distribution's stock settings.

Both images are built in this run from the example recipe: once as it is
(``first_boot: fast``, the default) and once with ``first_boot: stock`` —
the same packages, files, disk and GRUB, with cloud-init, the initramfs and
systemd as Debian ships them. Then each round boots both with ``slipway image
test`` on the local cloud (same QEMU flags, same accelerator, same disk and
user data), one right after the other, alternating which goes first; a
round's ratio is fast / stock, and the result is the median of the rounds'
ratios. Goal: ≤ 0.5. Needs root (the builds) and QEMU.

    sudo .venv/bin/python bench/boot_time.py [--rounds N] [--json]
        [--fast IMAGE.qcow2 --stock IMAGE.qcow2]   # skip the builds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from slipway import bootstrap
from slipway.config import load_settings
from slipway.imagekit.build import build_image
from slipway.imagekit.first_boot import FirstBoot
from slipway.imagekit.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "recipes" / "debian-12-minimal.yaml"
GOAL = 0.5


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build(work: Path, profile: FirstBoot) -> Path:
    recipe = dataclasses.replace(
        load_recipe(RECIPE), name=f"debian-12-{profile.value}", first_boot=profile
    )
    result = build_image(recipe, work / profile.value, cache_dir=work / "packages")
    return result.outputs["qcow2"]


def boot(data_dir: Path, image: Path) -> dict[str, Any]:
    settings = load_settings(overrides={"data_dir": str(data_dir)})
    report = bootstrap.boot_tester(settings).test(bootstrap.boot_image(settings, str(image)))
    if not report.passed:
        raise SystemExit(f"{image.name} failed its boot test: {report.failure}")
    return {
        "ssh_s": report.seconds_to_ssh,
        "cloud_init_s": report.seconds_to_cloud_init,
        "accelerator": report.accelerator,
        "profile": report.profile.to_dict(),
        "load": load(),
    }


def ratio(fast: float | None, stock: float | None) -> float:
    return (fast or 0.0) / (stock or 1.0)


def summary(rounds: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("ssh_s", "cloud_init_s"):
        for side in ("stock", "fast"):
            out[f"{side}_{key}_median"] = statistics.median(r[side][key] for r in rounds)
        out[f"{key}_ratio_median"] = statistics.median(
            ratio(r["fast"][key], r["stock"][key]) for r in rounds
        )
    return out


def print_table(results: dict[str, Any]) -> None:
    print(f"load average before: {results['load_before']}; after: {results['load_after']}")
    print(
        "| round | stock SSH s | fast SSH s | SSH ratio | stock cloud-init s | "
        "fast cloud-init s | cloud-init ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for i, r in enumerate(results["rounds"], 1):
        s, f = r["stock"], r["fast"]
        print(
            f"| {i} | {s['ssh_s']:.1f} | {f['ssh_s']:.1f} | {ratio(f['ssh_s'], s['ssh_s']):.2f} "
            f"| {s['cloud_init_s']:.1f} | {f['cloud_init_s']:.1f} | "
            f"{ratio(f['cloud_init_s'], s['cloud_init_s']):.2f} |"
        )
    m = results["summary"]
    print(
        f"| median | {m['stock_ssh_s_median']:.1f} | {m['fast_ssh_s_median']:.1f} | "
        f"**{m['ssh_s_ratio_median']:.2f}** | {m['stock_cloud_init_s_median']:.1f} | "
        f"{m['fast_cloud_init_s_median']:.1f} | **{m['cloud_init_s_ratio_median']:.2f}** |"
    )
    print(f"goal: both ratios <= {GOAL}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fast", type=Path, help="a fast-profile qcow2 (skips its build)")
    parser.add_argument("--stock", type=Path, help="a stock-profile qcow2 (skips its build)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-boot-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        images = {
            "stock": args.stock or build(work, FirstBoot.STOCK),
            "fast": args.fast or build(work, FirstBoot.FAST),
        }
        results: dict[str, Any] = {"load_before": load(), "rounds": []}
        for n in range(args.rounds):
            order = ("stock", "fast") if n % 2 == 0 else ("fast", "stock")
            row = {side: boot(work / "data", images[side]) for side in order}
            results["rounds"].append(row)
            print(
                f"round {n + 1}: " + json.dumps({k: row[k]["ssh_s"] for k in order}),
                file=sys.stderr,
            )
        results["load_after"] = load()
    results["summary"] = summary(results["rounds"])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
