"""``loupe cluster submit|status|logs|stop``: hand a dataset to a Ray cluster, and follow the job.

The job fills the shared cache named by ``--redis``; afterwards ``loupe project PATH --redis URL``
(same options) or the window opens the map warm on any desktop (README, "A Ray cluster").
Nothing here imports Ray until a command runs: :class:`engine.cluster.client.ClusterClient`
loads it on first use, and ``loupe --help`` needs only this module's parser.

Exit codes as everywhere: 0 done, 2 a refusal or bad input in one line (no token, plain http to
another host, a 401, an unreachable cluster, no shared cache), 1 a job that failed or was
stopped (its sentence on stderr), 130 interrupted (the job goes on; ``status`` follows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ADDRESS_HELP = "the cluster's Jobs API, http(s)://HOST:8265 (default: $RAY_ADDRESS)"


def add_parser(
    sub: Any,
    common: argparse.ArgumentParser,
    map_options: argparse.ArgumentParser,
    positive: Callable[[str], int],
) -> None:
    """``loupe cluster …`` on the top-level parser's subcommands (``positive``: its whole-number type)."""
    cluster = sub.add_parser(
        "cluster",
        help="hand a dataset to a Ray cluster that fills the shared cache, and follow the job",
        description="Submit a dataset to a Ray cluster (Jobs REST API, token auth): its workers embed "
        "every row into the shared cache and fit the map, so any desktop on that cache opens it warm.",
    )
    actions = cluster.add_subparsers(dest="action", required=True)
    access = argparse.ArgumentParser(add_help=False)
    access.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help=ADDRESS_HELP)
    access.add_argument(
        "--insecure",
        action="store_true",
        help="submit without a token, or over plain http to another host (only on a private network)",
    )
    submit = actions.add_parser(
        "submit", parents=[common, map_options, access], help="submit a dataset; --wait follows it"
    )
    submit.add_argument(
        "path", help="the dataset as the cluster sees it: a shared path, or a URI pyarrow reads (s3://…)"
    )
    submit.add_argument("--wait", action="store_true", help="show rows done, rate and ETA until the job ends")
    submit.add_argument(
        "--actors", type=positive, help="embedding actors (default: one per GPU, else CPUs - 1)"
    )
    submit.add_argument(
        "--batch-rows", type=positive, help="rows an actor embeds per batch (256 on CPUs, 1,024 on GPUs)"
    )
    submit.add_argument(
        "--secrets-from-cluster",
        action="store_true",
        help="send no Redis password or team key: the cluster's pods hold them (a Kubernetes Secret)",
    )
    for name, text in (
        ("status", "the job's status, rows done, rate and ETA"),
        ("logs", "the job's log"),
        ("stop", "stop the job (rows already embedded stay cached)"),
    ):
        command = actions.add_parser(name, parents=[access], help=text)
        command.add_argument("job", help="the job's id, as submit printed it")


def cluster_command(args: argparse.Namespace) -> int:
    """Run ``loupe cluster ACTION``; LoupeErrors propagate to main (one line, exit 2)."""
    from engine.cluster.client import ClusterClient
    from engine.errors import LoupeError

    if not args.address:
        raise LoupeError("loupe cluster needs --address http(s)://HOST:8265 (or RAY_ADDRESS).")
    client = ClusterClient(args.address, insecure=args.insecure)
    if args.action == "submit":
        return _submit(client, args)
    if args.action == "status":
        print(f"{args.job}: {client.state(args.job).describe()}")
        return 0
    if args.action == "logs":
        sys.stdout.write(client.logs(args.job))
        return 0
    stopped = client.stop(args.job)
    print(f"{args.job}: {'stop requested' if stopped else 'had already ended'}")
    return 0


def _submit(client: Any, args: argparse.Namespace) -> int:
    from engine.cli.maps import param_options, projection_params
    from engine.cluster.spec import ClusterJob
    from engine.errors import LoupeError
    from engine.runtime.version import loupe_version
    from engine.user.settings import configured_redis_url

    projection_params(args)  # bad --method/--param/--seed: one sentence here, not on the cluster
    redis_url = configured_redis_url(args.redis, args.no_cache)
    if not redis_url:
        raise LoupeError(
            "A cluster job fills a shared cache: give --redis URL, a Redis/Valkey server that both the "
            "cluster's workers and your desktops reach."
        )
    local = Path(args.path).expanduser()
    job = ClusterJob(
        path=str(local.resolve()) if "://" not in args.path and local.exists() else args.path,
        redis_url=redis_url,
        model=args.model,  # main filled it from the settings
        layer=args.layer,
        pooling=args.pooling,
        precision=args.precision,  # main filled it from the settings
        text_column=args.text_column,
        label_column=args.label_column,
        method=args.method,
        params=param_options(args.param),
        seed=args.seed,
        fit_sample=args.fit_sample,
        analyse=args.analyse,
        actors=args.actors,
        batch_rows=args.batch_rows,
        loupe_version=loupe_version(),
    )
    job_id = client.submit(job, send_secrets=not args.secrets_from_cluster)
    print(job_id)
    if not args.wait:
        if not args.quiet:
            print(f"loupe: submitted; follow it with: loupe cluster status {job_id}", file=sys.stderr)
        return 0
    return _follow(client, job_id, args.quiet)


def _follow(client: Any, job_id: str, quiet: bool) -> int:
    """Show the job's progress on stderr until it ends; 0 when it succeeded, else 1."""
    shown = {"line": ""}
    tty = sys.stderr.isatty()

    def show(state: Any) -> None:
        line = state.describe()
        if quiet or line == shown["line"]:
            return
        shown["line"] = line
        print(f"\r{line:<78}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)

    try:
        final = client.wait(job_id, show)
    except KeyboardInterrupt:
        print(f"\nloupe: stopped waiting; the job goes on (loupe cluster status {job_id})", file=sys.stderr)
        return 130
    if tty and not quiet:
        print(file=sys.stderr)
    if final.status == "SUCCEEDED":
        return 0
    print(
        f"loupe: the job {final.status.lower()}: {final.message or 'see loupe cluster logs ' + job_id}",
        file=sys.stderr,
    )
    return 1
