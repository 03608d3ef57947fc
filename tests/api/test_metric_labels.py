"""Metric labels are bounded: a client's model name never becomes a label (issue 9, defect 1).

Five requests with 1 MB model names used to make ``/metrics`` 270 MB, peak memory 855 MB, and a
scrape blocked every request for 2.4 s. Labels now come from configured names only.
"""

from __future__ import annotations

import httpx

from tests.gateway_server import run_gateway


def test_client_chosen_model_names_never_become_labels() -> None:
    config = {
        "providers": [{"name": "echo", "type": "echo", "models": ["listed"]}],
        "routes": [{"name": "chat", "targets": [{"provider": "echo", "model": "routed"}]}],
        "plugins": [{"name": "telemetry", "type": "telemetry"}],
    }
    huge = "m" * 1_000_000
    with run_gateway(config) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as client:
        for model in (f"echo/{huge}-{i}" for i in range(5)):
            response = client.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
            assert response.status_code == 200
        missing = client.post(
            "/v1/chat/completions", json={"model": huge, "messages": [{"role": "user", "content": "x"}]}
        )
        assert missing.status_code == 404 and len(missing.content) < 2_000  # the name is not echoed whole
        for model in ("chat", "echo/listed"):
            client.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
        metrics = client.get("/metrics").text
    assert len(metrics) < 200_000
    assert huge[:1000] not in metrics
    assert 'model="other",provider="echo"' in metrics
    assert 'model="routed",provider="echo"' in metrics and 'model="listed",provider="echo"' in metrics
