"""Benchmark: 200 concurrent runs on EC2 (moto), Slipway against plain boto3.

Both sides talk to the same moto server (a separate process, server mode, no
fault proxy, reset between measurements) with the same concurrency:

- baseline: a plain boto3 script with N threads; per run it ensures the
  security group (describe, create and authorise when missing), calls
  RunInstances with a ClientToken and tags, and polls DescribeInstances every
  2 s (Slipway's boot poll) until the instance runs and has an address;
- Slipway: ``RunService.deploy`` for each run, called from N threads as N
  users would (resolution, key pair, user data checked against cloud-init's
  schema, the run saved in SQLite, queued on Huey with SQLite storage), and an
  in-process Huey consumer with N threads moving the runs until all are
  ``ready``; the clock runs from the first deploy call to the last run ready.

moto's instances have nothing listening on their addresses, so readiness over
SSH is answered by a prober that says "cloud-init finished" at once, without a
network call (SSH would not touch the EC2 API either).

    .venv/bin/python bench/concurrent_runs_ec2.py [--runs 200] [--threads 16] [--rounds 1] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.moto_amis import write_moto_amis  # noqa: E402

from slipway.domain.runs import TERMINAL, RunState  # noqa: E402
from slipway.domain.security import MANAGED_GROUP, MANAGED_RULES  # noqa: E402

REGION = "eu-west-1"
AMI = "ami-0eb11ab33f229b26c"  # examples/images/debian-12 on aws-eu-west-1
POLL_S = 2.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Moto:
    """moto_server in its own process, so it does not share our interpreter."""

    def __init__(self, work: Path) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "MOTO_AMIS_PATH": str(write_moto_amis(work)),
            "MOTO_ENABLE_AMI_VALIDATION": "true",
            "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/").close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request).close()
        _client(self.url).describe_instances()  # moto builds the region, outside the timing

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def _client(url: str, pool: int = 50) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard"}, max_pool_connections=pool)
    return boto3.client("ec2", region_name=REGION, endpoint_url=url, config=config)


# -- the plain boto3 script ----------------------------------------------------------


def _permission(protocol: str, ports: str, source: str) -> dict[str, Any]:
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol in ("tcp", "udp"):
        low, _, high = ports.partition("-")
        permission["FromPort"], permission["ToPort"] = int(low), int(high or low)
    else:
        permission["FromPort"], permission["ToPort"] = -1, -1
    key, cidr = ("Ipv6Ranges", "CidrIpv6") if ":" in source else ("IpRanges", "CidrIp")
    permission[key] = [{cidr: source}]
    return permission


def _ensure_group(client: Any) -> str:
    import botocore.exceptions as bx

    for _ in range(5):
        found = client.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [MANAGED_GROUP]}]
        )["SecurityGroups"]
        if found:
            return str(found[0]["GroupId"])
        try:
            group_id = client.create_security_group(
                GroupName=MANAGED_GROUP, Description="baseline"
            )["GroupId"]
            client.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[_permission(r.protocol, r.ports, r.source) for r in MANAGED_RULES],
            )
            return str(group_id)
        except bx.ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidGroup.Duplicate":
                raise
    raise RuntimeError("could not ensure the group")


def baseline(url: str, runs: int, threads: int) -> tuple[float, float]:
    """Wall time and this process's CPU time (s) for ``runs`` runs."""
    client = _client(url)

    def one(index: int) -> None:
        group_id = _ensure_group(client)
        token = f"baseline-{index}"
        tags = [{"Key": "slipway-run", "Value": token}, {"Key": "Name", "Value": token}]
        instance_id = client.run_instances(
            ImageId=AMI,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            ClientToken=token,
            UserData="#cloud-config\n",
            SecurityGroupIds=[group_id],
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        )["Instances"][0]["InstanceId"]
        while True:
            reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
            instance = reservations[0]["Instances"][0]
            if instance["State"]["Name"] == "running" and instance.get("PublicIpAddress"):
                return
            time.sleep(POLL_S)

    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs)))
    return time.perf_counter() - start, time.process_time() - cpu


# -- Slipway ----------------------------------------------------------------------------


class _Ready:
    reachable = finished = succeeded = True
    step, output_tail, problem = "done", "", ""
    cpu, ram_kb = 2, 1024 * 1024


class ReadyProber:
    """SSH stand-in: the guest answers and cloud-init has finished."""

    def probe(self, host: str, port: int, user: str, private_key: str) -> _Ready:
        return _Ready()


def slipway(url: str, runs: int, threads: int, work: Path) -> tuple[float, dict[str, float]]:
    from tests.integration.ec2_world import AWS, Ec2World

    from slipway.adapters.cloudinit import validate_user_data
    from slipway.entrypoints.worker import EmbeddedWorker

    world = Ec2World(
        work, f"sqlite:///{work / 'slipway.db'}", url, _client(url), prober=ReadyProber()
    )
    world.catalog.resolve("examples/images/debian-12", clouds=[AWS])  # warm the catalog
    world.ec2(AWS)  # build the connector (boto3 session), outside the timing
    world.vault.seal("first use creates the vault key")
    validate_user_data("#cloud-config\n{}\n")  # imports jsonschema, once per process
    deployed: list[str] = []
    start, cpu = time.perf_counter(), time.process_time()
    with EmbeddedWorker(world.runtime, threads=threads):
        # As many users deploying at once as the baseline has threads.
        with ThreadPoolExecutor(threads) as users:
            deployed.extend(users.map(lambda _: world.deploy(), range(runs)))
        deploys_done = time.perf_counter() - start
        moving = [s for s in RunState if s is not RunState.READY and s not in TERMINAL]
        while True:  # one row at most per look, so that looking costs little
            with world.uow() as uow:
                if not uow.runs.list(states=moving, limit=1):
                    break
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    with world.uow() as uow:
        states = [r.state for r in uow.runs.list(limit=runs + 10)]
    failed = [s for s in states if s is not RunState.READY]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not reach ready: {failed[:5]}")
    stamps = [world.runs.get(run_id).timestamps for run_id in deployed]
    world.close()
    detail = {"deploy_calls_s": deploys_done, "cpu_s": cpu}
    phases = ["pending", "provisioning", "booting", "contextualizing", "ready"]
    for first, then in itertools.pairwise(phases):
        detail[f"median_{first}_s"] = statistics.median(_seconds(t, first, then) for t in stamps)
    runs_s = sorted(_seconds(t, "pending", "ready") for t in stamps)
    detail.update(median_run_s=statistics.median(runs_s), max_run_s=runs_s[-1])
    return elapsed, detail


def _seconds(timestamps: dict[str, str], first: str, then: str) -> float:
    from datetime import datetime

    start = datetime.fromisoformat(timestamps[first])
    return (datetime.fromisoformat(timestamps[then]) - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--slipway-only", action="store_true", help="for profiling")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    results: dict[str, Any] = {"runs": args.runs, "threads": args.threads, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        moto = Moto(Path(tmp))
        try:
            for round_ in range(args.rounds):
                moto.reset()
                plain, plain_cpu = (
                    (1.0, 0.0) if args.slipway_only else baseline(moto.url, args.runs, args.threads)
                )
                moto.reset()
                work = Path(tmp) / f"round-{round_}"
                work.mkdir()
                ours, detail = slipway(moto.url, args.runs, args.threads, work)
                results["rounds"].append(
                    {
                        "baseline_s": plain,
                        "baseline_cpu_s": plain_cpu,
                        "slipway_s": ours,
                        "ratio": ours / plain,
                        **detail,
                    }
                )
                if not args.json:
                    print(
                        f"round {round_ + 1}: baseline {plain:.1f} s (CPU {plain_cpu:.1f} s), "
                        f"Slipway {ours:.1f} s, "
                        f"ratio {ours / plain:.2f} (deploy calls {detail['deploy_calls_s']:.1f} s,"
                        f" median run {detail['median_run_s']:.1f} s)\n  "
                        + ", ".join(f"{k} {v:.2f}" for k, v in detail.items()),
                        flush=True,
                    )
        finally:
            moto.stop()
    ratios = [r["ratio"] for r in results["rounds"]]
    results["median_ratio"] = statistics.median(ratios)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"median ratio over {len(ratios)} round(s): {results['median_ratio']:.2f}")


if __name__ == "__main__":
    main()
