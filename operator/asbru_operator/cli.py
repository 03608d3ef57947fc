"""``asbru operator``: run the operator in a pod (service account) or locally (kubeconfig).

The gateway's CLI discovers this subcommand through the ``asbru.commands`` entry point, so the
gateway package never imports the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from asbru_operator.context import DEFAULT_IMAGE, MEMO_KEY, OperatorContext


def register(subparsers: Any) -> None:
    """Add the ``operator`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "operator", help="run the Kubernetes operator", description="Reconcile LLMGateway and friends."
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS", help="watch NS (repeatable; globs ok)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, then $KUBECONFIG)"
    )
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--gateway-image", default=DEFAULT_IMAGE, help="image of gateways that set none")
    parser.add_argument(
        "--liveness",
        default=os.environ.get("ASBRU_OPERATOR_LIVENESS"),
        metavar="URL",
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    parser.add_argument("--probe-interval", type=float, default=3.0, help="seconds between pod probes")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    import kopf  # noqa: PLC0415  (kopf is only needed when the operator actually runs)

    from asbru_operator.handlers import build_registry  # noqa: PLC0415
    from asbru_operator.kubeapi import KubeApi  # noqa: PLC0415

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    ctx = OperatorContext(
        api=KubeApi.from_environment(args.kubeconfig, args.context), default_image=args.gateway_image
    )
    namespaces = list(args.namespace)
    asyncio.run(
        kopf.operator(
            registry=build_registry(probe_interval_s=args.probe_interval),
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            memo=kopf.Memo({MEMO_KEY: ctx}),
            liveness_endpoint=args.liveness,
        )
    )
    return 0
