"""The `asbru operator` subcommand's arguments, pod addressing, and kubeconfig-based credentials."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from asbru_operator import cli
from asbru_operator.kubeapi import GATEWAYS, SECRETS, KubeApi
from asbru_operator.probe import is_running, pod_ip_url


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asbru")
    cli.register(parser.add_subparsers())
    return parser.parse_args(["operator", *argv])


def test_operator_subcommand_arguments() -> None:
    args = parse("--namespace", "a", "-n", "b", "--gateway-image", "img:1")
    assert args.namespace == ["a", "b"] and args.gateway_image == "img:1"
    assert args.func is cli.run
    assert parse("--all-namespaces").namespace == []


def test_pod_addresses() -> None:
    assert pod_ip_url({"status": {"podIP": "10.1.2.3"}}) == "http://10.1.2.3:8080"
    assert pod_ip_url({"status": {"podIP": "fd00::1"}}) == "http://[fd00::1]:8080"
    assert pod_ip_url({"status": {}}) is None
    assert is_running({"status": {"phase": "Running"}, "metadata": {}})
    assert not is_running({"status": {"phase": "Running"}, "metadata": {"deletionTimestamp": "now"}})


def test_paths() -> None:
    assert (
        GATEWAYS.path("ns", "gw", "status") == "/apis/asbru.dev/v1alpha1/namespaces/ns/llmgateways/gw/status"
    )
    assert SECRETS.path("ns") == "/api/v1/namespaces/ns/secrets"


def test_credentials_come_from_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t0k3n"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    creds = KubeApi.from_environment(str(path)).credentials()
    assert creds.server == "http://127.0.0.1:6443"
    assert creds.token == "t0k3n"
