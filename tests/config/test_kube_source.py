"""The Kubernetes config source against kmock, a real HTTP emulator of the Kubernetes API.

The source runs the official client exactly as in production (kubeconfig -> ApiClient -> list +
watch over HTTP); only the API server is emulated. Objects are changed through kmock's HTTP API,
not its in-memory store, because only API writes reach watch streams. Waits are on conditions
with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import kmock
import pytest

from asbru_gateway.config.errors import ConfigError
from asbru_gateway.config.kube_source import (
    REVISION_ANNOTATION,
    KubeConfigSource,
    KubeSourceRef,
    Pending,
    evaluate,
    load_api_client,
)
from asbru_gateway.config.kube_watch import ObjectData, ObjectWatcher, ObservedObject, WatchSettings
from asbru_gateway.config.model import GatewayConfig
from asbru_gateway.config.secrets import served_revision
from tests.kube_cluster import NAME, NAMESPACE, Cluster, b64
from tests.waiting import eventually

REF = KubeSourceRef(NAMESPACE, NAME)
API_KEY = "sk-test-0123456789abcdef"
ROTATED_KEY = "sk-test-rotated-fedcba9876"
WAIT_S = 5.0
THREAD_PREFIX = "asbru-kube-watch"


def config_json(*, concurrency: Any = 8, key_ref: str = "openai-key") -> str:
    """A small valid GatewayConfig as the operator renders it (a ``secret:`` reference, no value)."""
    return json.dumps(
        {
            "schemaVersion": "asbru.dev/v1alpha1",
            "providers": [
                {
                    "name": "openai",
                    "type": "openai",
                    "keys": [{"name": "main", "secret": f"secret:{key_ref}"}],
                    "pool": {"concurrency": concurrency},
                }
            ],
            "routes": [{"name": "gpt", "targets": [{"provider": "openai", "model": "gpt-4o"}]}],
        }
    )


def observed(data: Mapping[str, str], revision: str | None = None) -> ObservedObject:
    """An object as the watch reports it, optionally with the operator's revision annotation."""
    return ObservedObject(data=data, annotations={REVISION_ANNOTATION: revision} if revision else {})


class Recorder:
    """The caller's side: records ``on_config`` / ``on_error`` calls and lets tests wait on them."""

    def __init__(self) -> None:
        self.applied: list[tuple[GatewayConfig, dict[str, str], float]] = []
        self.errors: list[str] = []
        self.rejected_revisions: list[str | None] = []
        self._condition = asyncio.Condition()

    async def on_config(self, config: GatewayConfig, secrets: Mapping[str, str]) -> None:
        self.applied.append((config, dict(secrets), time.perf_counter()))
        async with self._condition:
            self._condition.notify_all()

    def on_error(self, reason: str, revision: str | None, *, counted: bool = False) -> None:
        self.errors.append(reason)
        self.rejected_revisions.append(revision)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S), self._condition:
            await self._condition.wait_for(predicate)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_source(kubeconfig: Path, recorder: Recorder) -> Iterator[Callable[[], KubeConfigSource]]:
    """Builds sources wired to the recorder; stops any the test left running."""
    sources: list[KubeConfigSource] = []

    def make() -> KubeConfigSource:
        source = KubeConfigSource(
            REF,
            recorder.on_config,
            on_error=recorder.on_error,
            api_client_factory=functools.partial(load_api_client, kubeconfig=str(kubeconfig)),
            watch_settings=WatchSettings(backoff_initial_s=0.05, backoff_max_s=0.5),
        )
        sources.append(source)
        return source

    yield make
    assert all(source._stopping.is_set() for source in sources), "a test forgot source.stop()"


@pytest.fixture
async def running(
    cluster: Cluster, make_source: Callable[[], KubeConfigSource], kmock: kmock.KubernetesEmulator
) -> Any:
    """A source started on a valid ConfigMap + Secret, with its first config applied and both
    watches open (a change made between the list and the watch request would be no one's event:
    on a loaded machine that window made a test wait for a deletion that was never watched)."""
    await cluster.create_configmap(config_json())
    await cluster.create_secret({"openai-key": API_KEY})
    source = make_source()
    await source.start()
    assert await source.first_applied(WAIT_S)

    async def both_watched() -> bool:
        watched = {str(request.url) for request in kmock if "watch" in request.params}
        return all(any(f"/{plural}" in url for url in watched) for plural in ("configmaps", "secrets"))

    await eventually(both_watched, timeout_s=WAIT_S)
    yield source
    await source.stop()


class LogWaiter(logging.Handler):
    """Waits for a log line of the source (logged on the event loop) containing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self._text = text
        self._seen = asyncio.Event()
        self.record = logging.makeLogRecord({})

    def emit(self, record: logging.LogRecord) -> None:
        if self._text in record.getMessage():
            self.record = record
            self._seen.set()

    async def wait(self) -> None:
        async with asyncio.timeout(WAIT_S):
            await self._seen.wait()

    def __enter__(self) -> LogWaiter:
        logger = logging.getLogger("asbru_gateway.config.kube_source")
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("asbru_gateway.config.kube_source")
        logger.removeHandler(self)
        logger.setLevel(logging.NOTSET)


def watch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(THREAD_PREFIX)]


# ---------------------------------------------------------------------------------------- ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [("llm/gw", REF), (" llm/my.gateway-1 ", KubeSourceRef("llm", "my.gateway-1"))],
)
def test_ref_parses_namespace_and_name(text: str, expected: KubeSourceRef) -> None:
    assert KubeSourceRef.parse(text) == expected
    assert str(expected) == f"{expected.namespace}/{expected.name}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gw", "expected NAMESPACE/NAME"),
        ("/gw", "expected NAMESPACE/NAME"),
        ("llm/", "expected NAMESPACE/NAME"),
        ("LLM/gw", "namespace 'LLM'"),
        ("llm/gw/x", "name 'gw/x'"),
        ("llm/Gw", "name 'Gw'"),
    ],
)
def test_ref_rejects_bad_input_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KubeSourceRef.parse(text)


def test_ref_from_env() -> None:
    assert KubeSourceRef.from_env({"ASBRU_KUBE_SOURCE": "llm/gw"}) == REF
    assert KubeSourceRef.from_env({}) is None


# ----------------------------------------------------------------------------------- evaluate


def test_evaluate_decodes_secrets_verbatim() -> None:
    config, secrets = evaluate(
        REF, observed({"config.json": config_json()}), observed({"openai-key": b64(API_KEY + "\n")})
    )
    assert secrets == {"openai-key": API_KEY + "\n"}  # not stripped: the operator hashes what it wrote
    assert config.providers[0].keys[0].secret == "secret:openai-key"


def test_evaluate_waits_for_objects_it_needs() -> None:
    with pytest.raises(Pending, match="ConfigMap llm/gw"):
        evaluate(REF, None, observed({}))
    with pytest.raises(Pending, match=r"Secret llm/gw.*openai-key"):
        evaluate(REF, observed({"config.json": config_json()}), None)


def test_evaluate_needs_no_secret_when_nothing_references_one() -> None:
    text = json.dumps({"schemaVersion": "asbru.dev/v1alpha1"})
    config, secrets = evaluate(REF, observed({"config.json": text}), None)
    assert secrets == {}
    assert config.providers == ()


@pytest.mark.parametrize(
    ("configmap", "secret", "message"),
    [
        ({}, {}, "no 'config.json' key"),
        ({"config.json": "{not json"}, {}, "not valid YAML/JSON"),
        ({"config.json": config_json()}, {"openai-key": "!!!"}, "'openai-key' is not base64"),
        ({"config.json": config_json()}, {"openai-key": ""}, "'openai-key' is empty"),
        ({"config.json": config_json()}, {}, "'openai-key' is missing .*provider 'openai' key 'main'"),
    ],
)
def test_evaluate_rejects(configmap: dict[str, str], secret: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate(REF, observed(configmap), observed(secret))


def test_evaluate_waits_while_the_operator_writes_are_torn() -> None:
    configmap = observed({"config.json": config_json(key_ref="new-key")}, revision="r2")
    with pytest.raises(Pending, match=r"to agree .*r2 vs r1"):
        evaluate(REF, configmap, observed({"openai-key": b64(API_KEY)}, revision="r1"))
    _, secrets = evaluate(REF, configmap, observed({"new-key": b64(API_KEY)}, revision="r2"))
    assert secrets == {"new-key": API_KEY}


# ------------------------------------------------------------------------- against the emulator


async def test_first_config_is_applied_with_decoded_secrets(
    running: KubeConfigSource, recorder: Recorder, kmock: kmock.KubernetesEmulator
) -> None:
    assert len(recorder.applied) == 1
    config, secrets, _ = recorder.applied[0]
    assert config.providers[0].pool.concurrency == 8
    assert secrets == {"openai-key": API_KEY}
    assert running.applied_revision == served_revision(config.revision, secrets)
    assert running.last_error is None
    assert running.pending is None
    # The Role allows list/watch on the one name only: every list/watch asks for it by fieldSelector.
    requests = [request for request in kmock if request.method == "GET" and "/configmaps" in str(request.url)]
    assert requests
    assert all(request.params.get("fieldSelector") == f"metadata.name={NAME}" for request in requests)


async def test_configmap_change_reaches_on_config_within_a_second(
    running: KubeConfigSource, cluster: Cluster, recorder: Recorder
) -> None:
    latencies: list[float] = []
    for concurrency in (16, 24, 32, 40, 48):
        count = len(recorder.applied)
        started = time.perf_counter()
        await cluster.update_configmap(config_json(concurrency=concurrency))
        await recorder.wait_for(lambda count=count: len(recorder.applied) > count)  # type: ignore[misc]
        config, _, applied_at = recorder.applied[-1]
        assert config.providers[0].pool.concurrency == concurrency
        latencies.append(applied_at - started)
    print(
        "ConfigMap change -> on_config (ms): "
        + ", ".join(f"{latency * 1000:.1f}" for latency in latencies)
        + f"; median {statistics.median(latencies) * 1000:.1f}, max {max(latencies) * 1000:.1f}"
    )
    assert max(latencies) < 1.0


async def test_secret_rotation_applies_new_secrets_for_the_same_config(
    running: KubeConfigSource, cluster: Cluster, recorder: Recorder
) -> None:
    first_revision = running.applied_revision
    started = time.perf_counter()
    await cluster.update_secret({"openai-key": ROTATED_KEY})
    await recorder.wait_for(lambda: len(recorder.applied) == 2)
    (old_config, _, _), (new_config, secrets, applied_at) = recorder.applied
    print(f"Secret rotation -> on_config: {(applied_at - started) * 1000:.1f} ms")
    assert new_config.revision == old_config.revision
    assert secrets == {"openai-key": ROTATED_KEY}
    assert running.applied_revision != first_revision
    assert applied_at - started < 1.0


async def test_unchanged_objects_are_not_applied_again(
    running: KubeConfigSource, cluster: Cluster, recorder: Recorder
) -> None:
    await cluster.update_configmap(config_json())  # same content: a new event, the same revision
    await cluster.update_configmap(config_json(concurrency=9))  # a real change, as a marker
    await recorder.wait_for(lambda: len(recorder.applied) >= 2)
    assert [config.providers[0].pool.concurrency for config, _, _ in recorder.applied] == [8, 9]


async def test_invalid_config_is_rejected_and_the_last_good_kept(
    running: KubeConfigSource,
    cluster: Cluster,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good_revision = running.applied_revision
    # The secret value pasted where a number belongs: the error must name the field, not echo it.
    await cluster.update_configmap(config_json(concurrency=API_KEY))
    await recorder.wait_for(lambda: len(recorder.errors) == 1)
    assert running.last_error is not None
    assert "providers.0.pool.concurrency" in running.last_error
    assert recorder.errors == [running.last_error]
    assert API_KEY not in running.last_error
    assert API_KEY not in caplog.text
    assert len(recorder.applied) == 1
    assert running.applied_revision == good_revision
    # Fixed: applied again and the error is cleared.
    await cluster.update_configmap(config_json(concurrency=12))
    await recorder.wait_for(lambda: len(recorder.applied) == 2)
    assert running.last_error is None


async def test_a_torn_render_is_waited_for_not_rejected(
    cluster: Cluster, make_source: Callable[[], KubeConfigSource], recorder: Recorder
) -> None:
    """The operator writes the ConfigMap, then the Secret: the half-written pair is not judged."""
    await cluster.create_configmap(config_json(), revision="r1")
    await cluster.create_secret({"openai-key": API_KEY}, revision="r1")
    async with make_source() as source:
        assert await source.first_applied(WAIT_S)
        await cluster.update_configmap(config_json(key_ref="anthropic-key"), revision="r2")
        await cluster.update_secret({"anthropic-key": ROTATED_KEY}, revision="r2")
        await recorder.wait_for(lambda: len(recorder.applied) == 2)
    assert recorder.errors == []  # the new ConfigMap with the old Secret was waited out, not rejected
    assert recorder.applied[-1][0].providers[0].keys[0].secret == "secret:anthropic-key"


async def test_config_referencing_a_missing_secret_key_is_rejected(
    running: KubeConfigSource, cluster: Cluster, recorder: Recorder
) -> None:
    await cluster.update_configmap(config_json(key_ref="anthropic-key"))
    await recorder.wait_for(lambda: len(recorder.errors) == 1)
    assert running.last_error is not None
    assert "'anthropic-key' is missing" in running.last_error
    assert API_KEY not in running.last_error
    assert len(recorder.applied) == 1
    # The operator adds the key: now the combination is valid and applied.
    await cluster.update_secret({"anthropic-key": ROTATED_KEY})
    await recorder.wait_for(lambda: len(recorder.applied) == 2)
    assert recorder.applied[-1][1] == {"openai-key": API_KEY, "anthropic-key": ROTATED_KEY}
    assert running.last_error is None


async def test_a_failing_on_config_is_reported_with_secrets_masked(
    cluster: Cluster, kubeconfig: Path
) -> None:
    errors: list[str] = []
    reported = asyncio.Event()

    async def on_config(config: GatewayConfig, secrets: Mapping[str, str]) -> None:
        raise ConfigError(f"provider rejected key {secrets['openai-key']}")

    def on_error(reason: str, revision: str | None, *, counted: bool = False) -> None:
        errors.append(reason)
        reported.set()

    await cluster.create_configmap(config_json())
    await cluster.create_secret({"openai-key": API_KEY})
    factory = functools.partial(load_api_client, kubeconfig=str(kubeconfig))
    async with KubeConfigSource(REF, on_config, on_error=on_error, api_client_factory=factory) as source:
        async with asyncio.timeout(WAIT_S):
            await reported.wait()
        assert not await source.first_applied(0)
    assert errors == [source.last_error]
    assert "provider rejected key ***" in errors[0]
    assert API_KEY not in errors[0]


async def test_configmap_created_after_start_is_picked_up(
    cluster: Cluster, make_source: Callable[[], KubeConfigSource], recorder: Recorder
) -> None:
    await cluster.create_secret({"openai-key": API_KEY})
    source = make_source()
    await source.start()
    try:
        assert not await source.first_applied(0.3)
        assert source.pending == f"waiting for ConfigMap {REF}"
        assert source.last_error is None
        await cluster.create_configmap(config_json())
        assert await source.first_applied(WAIT_S)
        assert recorder.applied[0][1] == {"openai-key": API_KEY}
        assert source.pending is None
    finally:
        await source.stop()


async def test_secret_created_after_the_configmap_is_waited_for(
    cluster: Cluster, make_source: Callable[[], KubeConfigSource], recorder: Recorder
) -> None:
    await cluster.create_configmap(config_json())
    async with make_source() as source:
        assert not await source.first_applied(0.3)
        assert source.pending is not None
        assert "Secret" in source.pending
        assert recorder.errors == []  # absence is a wait, not a rejection
        await cluster.create_secret({"openai-key": API_KEY})
        assert await source.first_applied(WAIT_S)


async def test_deleted_configmap_keeps_the_last_good_config(
    running: KubeConfigSource, cluster: Cluster, recorder: Recorder
) -> None:
    revision = running.applied_revision
    with LogWaiter("waiting for ConfigMap") as waiter:  # a deletion has no callback: its log line
        await cluster.delete_configmap()
        await waiter.wait()
    assert waiter.record.levelno == logging.WARNING
    assert f"still serving revision {revision}" in waiter.record.getMessage()
    assert running.pending == f"waiting for ConfigMap {REF}"
    assert running.applied_revision == revision
    assert running.last_error is None
    await cluster.create_configmap(config_json(concurrency=5))
    await recorder.wait_for(lambda: len(recorder.applied) == 2)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param((({"type": "ERROR", "object": {"kind": "Status", "code": 410}},), 2), id="410-relists"),
        pytest.param(((b"",), 1), id="end-rewatches"),
    ],
)
async def test_watch_recovers_when_the_server_ends_it(
    cluster: Cluster,
    make_source: Callable[[], KubeConfigSource],
    recorder: Recorder,
    kmock: kmock.KubernetesEmulator,
    case: tuple[tuple[Any, ...], int],
) -> None:
    """The first ConfigMap watch ends at once (410 Gone, or a plain end); changes still arrive."""
    first_watch, lists = case
    watches: list[object] = []

    def first(request: object) -> bool:
        watches.append(request)
        return len(watches) == 1

    kmock["watch v1/configmaps"][first] << first_watch
    await cluster.create_configmap(config_json())
    await cluster.create_secret({"openai-key": API_KEY})
    async with make_source() as source:
        assert await source.first_applied(WAIT_S)
        await cluster.update_configmap(config_json(concurrency=3))
        await recorder.wait_for(lambda: len(recorder.applied) == 2)
    assert len(watches) >= 2
    configmap_lists = [
        request
        for request in kmock
        if "/configmaps" in str(request.url) and request.method == "GET" and "watch" not in request.params
    ]
    assert len(configmap_lists) == lists


async def test_stop_ends_threads_and_task(
    cluster: Cluster, make_source: Callable[[], KubeConfigSource]
) -> None:
    await cluster.create_secret({"openai-key": API_KEY})
    source = make_source()
    await source.start()
    assert len(watch_threads()) == 2
    started = time.perf_counter()
    await source.stop()
    print(f"stop() took {(time.perf_counter() - started) * 1000:.1f} ms")
    assert watch_threads() == []
    assert source._task is not None
    assert source._task.done()
    await source.stop()  # idempotent


async def test_stop_without_start_is_harmless(make_source: Callable[[], KubeConfigSource]) -> None:
    await make_source().stop()


async def test_kubeconfig_from_the_environment(
    cluster: Cluster, kubeconfig: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    await cluster.create_configmap(config_json())
    await cluster.create_secret({"openai-key": API_KEY})
    async with KubeConfigSource(REF, recorder.on_config) as source:
        assert await source.first_applied(WAIT_S)


async def test_missing_credentials_fail_start(tmp_path: Path, recorder: Recorder) -> None:
    factory = functools.partial(load_api_client, kubeconfig=str(tmp_path / "absent"))
    source = KubeConfigSource(REF, recorder.on_config, api_client_factory=factory)
    with pytest.raises(ConfigError, match="cannot load Kubernetes credentials"):
        await source.start()
    await source.stop()


# ------------------------------------------------------------- watch reconnects (scripted API)


class FakeResponse:
    """Just enough of a urllib3 response: ``data`` for a list, ``stream()`` for a watch."""

    def __init__(
        self, body: Any = None, events: list[Any] | None = None, hold: threading.Event | None = None
    ) -> None:
        self.data = json.dumps(body).encode()
        self._events = events or []
        self._hold = hold

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        for event in self._events:
            yield json.dumps(event).encode() + b"\n"
        if self._hold is not None:
            self._hold.wait(WAIT_S)  # a quiet, open watch until shut down

    def shutdown(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def close(self) -> None: ...

    def release_conn(self) -> None: ...


class ApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.reason = "Scripted"
        self.body = json.dumps({"message": "scripted failure"})


def cm(value: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": NAME, "resourceVersion": version}, "data": {"v": value}}


def test_watcher_relists_after_410_and_resumes_after_errors() -> None:
    """410 Gone (as an HTTP status and as an ERROR event) -> relist; other errors -> re-watch."""
    hold = threading.Event()
    script: list[Any] = [
        FakeResponse({"metadata": {"resourceVersion": "1"}, "items": [cm("a", "1")]}),
        FakeResponse(events=[{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}]),
        FakeResponse({"metadata": {"resourceVersion": "5"}, "items": [cm("b", "5")]}),
        ApiError(500),
        ApiError(410),
        FakeResponse({"metadata": {"resourceVersion": "7"}, "items": []}),
        FakeResponse(
            events=[
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
                {"type": "ADDED", "object": {"metadata": {"name": "other", "resourceVersion": "9"}}},
                {"type": "ADDED", "object": cm("c", "10")},
            ],
            hold=hold,
        ),
    ]
    calls: list[dict[str, Any]] = []
    emitted: list[ObjectData] = []
    done = threading.Event()

    def list_function(namespace: str, **kwargs: Any) -> Any:
        calls.append({"namespace": namespace, **kwargs})
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def emit(data: ObjectData) -> None:
        emitted.append(data)
        if data == observed({"v": "c"}):
            done.set()

    stopping = threading.Event()
    watcher = ObjectWatcher(
        kind="ConfigMap",
        list_function=list_function,
        namespace=NAMESPACE,
        name=NAME,
        emit=emit,
        stopping=stopping,
        settings=WatchSettings(backoff_initial_s=0.001, backoff_max_s=0.01),
    )
    thread = threading.Thread(target=watcher.run, name=f"{THREAD_PREFIX} test")
    thread.start()
    assert done.wait(WAIT_S)
    stopping.set()
    watcher.interrupt()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert emitted == [observed({"v": "a"}), observed({"v": "b"}), None, observed({"v": "c"})]
    watches = [call.get("resource_version") for call in calls if call.get("watch")]
    assert watches == ["1", "5", "5", "7"]  # resumed from 5 after the 500; relisted after each 410
    assert all(call["field_selector"] == f"metadata.name={NAME}" for call in calls)
