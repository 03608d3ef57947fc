"""``asbru``: the one command. Subcommands come from the ``asbru.commands`` entry point group.

``serve`` is the gateway's own; ``operator`` is registered by the operator package. Discovering
them by entry point keeps the dependency one-way: the gateway never imports the operator.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asbru", description="Asbru LLM gateway")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for entry in sorted(entry_points(group="asbru.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as error:
            _register_broken(subparsers, entry.name, error)
        else:
            register(subparsers)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def _register_broken(subparsers: Any, name: str, error: ImportError) -> None:
    """A subcommand whose module cannot be imported still shows up, and says why when used."""

    def explain(_: argparse.Namespace) -> int:
        print(f"asbru {name}: unavailable in this installation ({error})", file=sys.stderr)
        return 2

    subparsers.add_parser(name, help=f"(unavailable: {error})").set_defaults(func=explain)


def register_serve(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the gateway (embedded default config if none given)")
    serve.add_argument(
        "--config",
        default=os.environ.get("ASBRU_CONFIG"),
        help="YAML/JSON config file, reloaded on change and SIGHUP (env ASBRU_CONFIG)",
    )
    serve.add_argument(
        "--no-watch",
        action="store_true",
        default=os.environ.get("ASBRU_CONFIG_WATCH", "1") == "0",
        help="do not watch --config for changes; reload it on SIGHUP only (env ASBRU_CONFIG_WATCH=0)",
    )
    serve.add_argument(
        "--kube-source",
        default=os.environ.get("ASBRU_KUBE_SOURCE"),
        metavar="NAMESPACE/NAME",
        help="watch this ConfigMap and Secret through the Kubernetes API (env ASBRU_KUBE_SOURCE)",
    )
    serve.add_argument("--host", default=os.environ.get("ASBRU_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("ASBRU_PORT", "8080")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("ASBRU_WORKERS", "1")))
    serve.add_argument(
        "--admin-port",
        type=int,
        default=int(os.environ["ASBRU_ADMIN_PORT"]) if os.environ.get("ASBRU_ADMIN_PORT") else None,
        help="serve the management API on this port (env ASBRU_ADMIN_PORT); token: ASBRU_ADMIN_TOKEN(_FILE)",
    )
    serve.add_argument("--admin-host", default=os.environ.get("ASBRU_ADMIN_HOST", "127.0.0.1"))
    serve.add_argument("--log-level", default=os.environ.get("ASBRU_LOG_LEVEL", "info"))
    serve.add_argument(
        "--shutdown-drain",
        type=float,
        default=float(os.environ.get("ASBRU_SHUTDOWN_DRAIN_S", "30")),
        help="seconds to let in-flight requests and streams finish on SIGTERM",
    )
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from asbru_gateway.observability.logging import configure
    from asbru_gateway.server.limits import ServerLimits
    from asbru_gateway.server.run import APP_FACTORY, serve, server_config

    # Workers are separate processes that build the app from the environment (uvicorn --factory).
    os.environ["ASBRU_SHUTDOWN_DRAIN_S"] = str(args.shutdown_drain)
    os.environ["ASBRU_LOG_LEVEL"] = args.log_level
    os.environ["ASBRU_CONFIG_WATCH"] = "0" if args.no_watch else "1"
    os.environ["ASBRU_ADMIN_HOST"] = args.admin_host
    os.environ["ASBRU_WORKERS"] = str(args.workers)
    admin_port = str(args.admin_port) if args.admin_port is not None else None
    for name, value in (
        ("ASBRU_CONFIG", args.config),
        ("ASBRU_KUBE_SOURCE", args.kube_source),
        ("ASBRU_ADMIN_PORT", admin_port),
    ):
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    configure(args.log_level)
    config = server_config(
        APP_FACTORY,
        limits=ServerLimits.from_environment(),
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        timeout_graceful_shutdown=int(args.shutdown_drain),
    )
    return serve(config)


if __name__ == "__main__":
    raise SystemExit(main())
