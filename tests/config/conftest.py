"""Fixtures: the Kubernetes API emulator and a kubeconfig pointing at it."""

from __future__ import annotations

from pathlib import Path

import kmock
import pytest

from tests.kube_cluster import Cluster, load_bundled_resources, write_kubeconfig


@pytest.fixture
def cluster(kmock: kmock.KubernetesEmulator) -> Cluster:
    load_bundled_resources(kmock)
    return Cluster(kmock)


@pytest.fixture
def kubeconfig(tmp_path: Path, kmock: kmock.KubernetesEmulator) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", kmock)
