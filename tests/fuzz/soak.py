"""Soak benchmark (not a test): run `cli.py simulate --stream` and sample its RSS over time.

Runs the real command as a child process, reads its resident memory from /proc every `--every`
wall-clock seconds, and parses the accounting line the command prints at the end. Writes one JSON
object (RSS curve, accounting, wall time, exit code) to stdout and to `--json` if given.

    python -m tests.fuzz.soak --devices 1000 --duration 3600 --every 10 --json soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_ACCOUNTING = re.compile(
    r"(?P<samples_in>\d+) samples in, (?P<samples_used>\d+) used, dropped (?P<dropped>.+?); "
    r"(?P<windows>\d+) windows scored; (?P<detections>\d+) detections"
)


def rss_mib(pid: int) -> float | None:
    """VmRSS of process `pid` in MiB, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def soak(devices: int, duration: float, every: float, models: str) -> dict:
    cmd = [
        sys.executable,
        "cli.py",
        "simulate",
        "--stream",
        "--devices",
        str(devices),
        "--duration",
        f"{duration:g}",
        "--speed",
        "max",
        "--models",
        models,
    ]
    env = dict(os.environ, COLUMNS="400")  # rich must not wrap the accounting line
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"soak_{os.getpid()}.log"
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=err, stderr=subprocess.STDOUT, env=env)
        curve: list[tuple[float, float]] = []
        while proc.poll() is None:
            value = rss_mib(proc.pid)
            if value is not None:
                curve.append((round(time.perf_counter() - start, 1), round(value, 1)))
            time.sleep(every)
    wall = time.perf_counter() - start
    text = log.read_text()
    match = _ACCOUNTING.search(text.replace("\n", " "))
    accounting = None
    if match:
        accounting = {k: v if k == "dropped" else int(v) for k, v in match.groupdict().items()}
        hz = json.loads((ROOT / models / "manifest.json").read_text())["hz"]
        accounting["expected_samples"] = int(round(devices * duration * hz))
    rss = [v for _, v in curve]
    settled = rss[len(rss) // 5 :] or rss  # after the first fifth: imports and warm-up are done
    return {
        "command": " ".join(cmd[1:]),
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "accounting": accounting,
        "rss_mib": curve,
        "rss_summary": {
            "first": rss[0] if rss else None,
            "settled_min": min(settled) if settled else None,
            "settled_max": max(settled) if settled else None,
            "last": rss[-1] if rss else None,
        },
        "log_tail": text.strip().splitlines()[-3:] if proc.returncode else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--every", type=float, default=10.0, help="RSS sampling period, wall s")
    ap.add_argument("--models", default="exported_models")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    result = soak(args.devices, args.duration, args.every, args.models)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
