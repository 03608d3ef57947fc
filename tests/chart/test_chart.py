"""The Helm chart, the Dockerfile and the quick start, checked offline.

No cluster, no helm binary, no docker: the chart is linted and rendered by Helm v4 itself, as a
library (helm-python-sdk). Every rendered object is validated against the Kubernetes OpenAPI
schemas in strict mode (kubernetes-validate); custom resources (the chart's default gateway, the
quick start) against the openAPIV3Schema of the CRDs the operator generates, as the API server
would: unknown fields rejected, defaults applied, CEL rules evaluated (cel-python). The operator's
own renderer then turns them into the gateway's config, and the operator and serve command lines
the chart and the image produce are parsed by the real CLI.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "asbru"
CRDS_DIR = ROOT / "crds"
CHART_CRDS_DIR = CHART_DIR / "crds"
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
RBAC_MD = ROOT / "operator" / "asbru_operator" / "RBAC.md"

KUBE_VERSION = "1.33"
RELEASE = "asbru"
NAMESPACE = "asbru-system"
GROUP = "asbru.dev"
CHART_NAME = "asbru"
KINDS = {"LLMGateway", "LLMProvider", "LLMRoute", "LLMPlugin", "LLMMCPServer", "LLMVirtualKey", "LLMTeam"}
UID = 10001

FULL_VALUES: dict[str, Any] = {
    "image": {"repository": "registry.example.com/asbru", "tag": "0.1.0-rc1", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "commonLabels": {"team": "platform"},
    "operator": {
        "watchNamespaces": ["team-a", "team-b"],
        "liveness": {"enabled": False},
        "extraArgs": ["--verbose"],
        "extraEnv": [{"name": "ASBRU_LOG_FORMAT", "value": "json"}],
        "podAnnotations": {"prometheus.io/scrape": "false"},
        "podLabels": {"cost-center": "llm"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "system-cluster-critical",
    },
    "serviceAccount": {"annotations": {"example.com/role": "asbru"}},
    "defaultGateway": {"enabled": True, "providerKeys": {"existingSecret": "my-llm-keys"}},
}
"""Every option at once: watched namespaces, scheduling, pull secrets, a default gateway whose
provider keys come from a Secret the user brought."""

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "full": FULL_VALUES,
    "default-gateway-chart-secret": {
        "defaultGateway": {
            "enabled": True,
            "providerKeys": {"openai": "sk-test", "anthropic": "sk-ant-test"},
        }
    },
    "governance-with-redis": {
        "redis": {"deploy": True},
        "defaultGateway": {
            "enabled": True,
            "providerKeys": {"openai": "sk-test", "anthropic": "sk-ant-test"},
            "governance": {"enabled": True},
        },
    },
}


# --- YAML ------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (the API server's decoder does too)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc]


# --- rendering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One offline render: objects by template path, and NOTES.txt."""

    manifests: dict[str, list[dict[str, Any]]]
    notes: str

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [obj for objs in self.manifests.values() for obj in objs]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if name is None or obj["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
        return found[0]

    @property
    def operator(self) -> dict[str, Any]:
        return self.one("Deployment", f"{RELEASE}-operator")


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@cache
def _render(scenario: str) -> Rendered:
    with helm.Chart.load(CHART_DIR) as loaded:
        raw = loaded.render(SCENARIOS[scenario], name=RELEASE, namespace=NAMESPACE, is_install=True)
    notes = raw.pop(f"{CHART_NAME}/templates/NOTES.txt", "")
    manifests = {path: load_all(text) for path, text in raw.items() if path.endswith((".yaml", ".yml"))}
    return Rendered(manifests=manifests, notes=notes)


@pytest.fixture(params=sorted(SCENARIOS))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return _render(request.param)


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return [obj["spec"]["template"]["spec"]]
    return []


# --- CRDs and custom resources --------------------------------------------------------------------


@cache
def crds() -> dict[str, dict[str, Any]]:
    """The chart's CRDs by kind (what Helm installs)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(CHART_CRDS_DIR.glob("*.y*ml")):
        for doc in load_all(path.read_text()):
            assert doc["kind"] == "CustomResourceDefinition", path
            found[doc["spec"]["names"]["kind"]] = doc
    return found


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as the API server applies it: unknown fields are not allowed.

    The API server prunes unknown fields silently; a manifest relying on one is a typo. Objects that
    declare ``properties`` get ``additionalProperties: false`` unless they preserve unknown fields.
    """
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # ObjectMeta is the API server's, not the CRD's: a CRD may only constrain name/generateName.
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


def _defaulted(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's defaults applied, as the API server does before CEL rules run."""
    if isinstance(value, dict):
        value = dict(value)
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, child in value.items():
            sub = properties.get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                value[key] = _defaulted(sub, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_defaulted(schema["items"], child) for child in value]
    return value


@cache
def _cel_program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def cel_violations(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Messages of the ``x-kubernetes-validations`` rules ``value`` breaks, at any depth."""
    violations = []
    for rule in schema.get("x-kubernetes-validations", []):
        result = _cel_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if not isinstance(result, celpy.celtypes.BoolType) or not result:
            violations.append(f"{path or '<root>'}: {rule.get('message', rule['rule'])} ({result!r})")
    if isinstance(value, dict):
        for key, child in value.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                violations += cel_violations(sub, child, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            violations += cel_violations(schema["items"], child, f"{path}[{index}]")
    return violations


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Validate like the API server: structural schema (no unknown fields), defaults, CEL rules."""
    group, _, version = obj["apiVersion"].partition("/")
    assert group == GROUP, obj["apiVersion"]
    crd = crds()[obj["kind"]]
    assert crd["spec"]["group"] == GROUP
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"{obj['kind']} {version} is not served"
    schema = served[version]["schema"]["openAPIV3Schema"]
    # OpenAPI v3.0 schemas are draft-4 JSON Schema (boolean exclusiveMinimum) plus extensions.
    jsonschema.validate(obj, _structural(schema), cls=jsonschema.Draft4Validator)
    assert cel_violations(schema, _defaulted(schema, obj)) == []
    name = obj["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), name


def validate(obj: dict[str, Any]) -> None:
    """Strict schema validation of any object the chart or the examples ship."""
    if obj["apiVersion"].startswith(f"{GROUP}/"):
        validate_custom_resource(obj)
    else:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


# --- lint, render, validate ----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_lint_is_clean(scenario: str) -> None:
    report = helm.lint(CHART_DIR, SCENARIOS[scenario], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_chart_metadata(chart: helm.Chart) -> None:
    assert chart.metadata["apiVersion"] == "v2"
    assert chart.name == "asbru"
    assert chart.metadata["appVersion"] == "0.1.0"
    assert chart.schema is not None
    assert chart.schema["additionalProperties"] is False


def test_every_rendered_object_is_valid(rendered: Rendered) -> None:
    assert rendered.objects
    for obj in rendered.objects:
        validate(obj)


def test_rendered_objects_are_namespaced_and_labelled(rendered: Rendered) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in rendered.objects:
        meta = obj["metadata"]
        assert (obj["kind"] in cluster_scoped) == ("namespace" not in meta), obj["kind"]
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered.objects]
    assert len(names) == len(set(names)), names


def test_crds_ship_with_the_chart_and_validate(chart: helm.Chart) -> None:
    shipped = chart.crds
    assert {crd["filename"] for crd in shipped} == {
        f"{CHART_NAME}/crds/{p.name}" for p in CHART_CRDS_DIR.iterdir() if p.suffix in {".yaml", ".yml"}
    }
    kinds = set()
    for entry in shipped:
        for doc in load_all(entry["data"]):
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            assert doc["spec"]["group"] == GROUP
            kinds.add(doc["spec"]["names"]["kind"])
            # Helm never deletes crds/; no hook or resource-policy is needed nor allowed to change that.
            assert "helm.sh/hook" not in doc["metadata"].get("annotations", {})
    assert kinds == KINDS


def test_chart_crds_match_the_generated_ones() -> None:
    generated = {p.name: load_all(p.read_text()) for p in CRDS_DIR.glob("*.y*ml")}
    in_chart = {p.name: load_all(p.read_text()) for p in CHART_CRDS_DIR.glob("*.y*ml")}
    assert in_chart == generated


# --- the operator ------------------------------------------------------------------------------------


def test_operator_deployment_defaults() -> None:
    deployment = _render("defaults").operator
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/asbru-dev/asbru:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in container  # the image's ENTRYPOINT is asbru
    assert container["args"] == [
        "operator",
        "--all-namespaces",
        # Gateway pods run the chart's image.
        "--gateway-image=ghcr.io/asbru-dev/asbru:0.1.0",
        "--liveness=http://0.0.0.0:8081/healthz",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert container["ports"] == [{"name": "liveness", "containerPort": 8081, "protocol": "TCP"}]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert pod["serviceAccountName"] == f"{RELEASE}-operator"
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    for absent in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert absent not in pod


def test_operator_deployment_options() -> None:
    deployment = _render("full").operator
    pod_template = deployment["spec"]["template"]
    pod = pod_template["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/asbru:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert container["args"] == [
        "operator",
        "--namespace",
        "team-a",
        "--namespace",
        "team-b",
        "--gateway-image=registry.example.com/asbru:0.1.0-rc1",
        "--verbose",
    ]
    assert "livenessProbe" not in container
    assert {"name": "ASBRU_LOG_FORMAT", "value": "json"} in container["env"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == FULL_VALUES["operator"]["nodeSelector"]
    assert pod["tolerations"] == FULL_VALUES["operator"]["tolerations"]
    assert pod["affinity"] == FULL_VALUES["operator"]["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod_template["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert pod_template["metadata"]["labels"]["cost-center"] == "llm"
    assert deployment["metadata"]["labels"]["team"] == "platform"
    sa = _render("full").one("ServiceAccount")
    assert sa["metadata"]["annotations"] == {"example.com/role": "asbru"}


def test_existing_service_account() -> None:
    with helm.Chart.load(CHART_DIR) as loaded:
        raw = loaded.render(
            {"serviceAccount": {"create": False, "name": "mine"}}, name=RELEASE, namespace=NAMESPACE
        )
        with pytest.raises(helm.HelmRenderError, match=r"serviceAccount\.name is required"):
            loaded.render({"serviceAccount": {"create": False}}, name=RELEASE, namespace=NAMESPACE)
    objects = [obj for path, text in raw.items() if path.endswith(".yaml") for obj in load_all(text)]
    assert not [obj for obj in objects if obj["kind"] == "ServiceAccount"]
    bindings = [obj for obj in objects if obj["kind"] == "ClusterRoleBinding"]
    assert bindings[0]["subjects"][0]["name"] == "mine"


def test_every_pod_runs_restricted(rendered: Rendered) -> None:
    pods = [spec for obj in rendered.objects for spec in pod_specs(obj)]
    assert len(pods) >= 2  # the operator and the helm test pod
    for pod in pods:
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert psc["runAsUser"] == UID
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not pod.get("hostNetwork")
        assert not pod.get("hostPID")
        assert not pod.get("hostIPC")
        for volume in pod.get("volumes", []):
            assert "hostPath" not in volume
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["runAsUser"] == UID
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]["memory"]
            assert not any("hostPort" in port for port in container.get("ports", []))


# --- RBAC ----------------------------------------------------------------------------------------------

CLUSTER_SCOPED = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
ONLY_WHEN_NAMESPACED = {("", "namespaces")}
"""kopf follows namespaces only when it watches a list of them (not with --all-namespaces)."""
ESCALATION_EXTRAS = {("", "configmaps", "list"), ("", "configmaps", "watch")}
"""Not used by the operator, but held so that it may grant them to the gateway's Role (RBAC.md)."""


def _rules_from_yaml_blocks(text: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for block in re.findall(r"```ya?ml\n(.*?)```", text, flags=re.DOTALL):
        for doc in yaml.safe_load_all(block):
            candidates = doc.get("rules", []) if isinstance(doc, dict) else doc
            if isinstance(candidates, list):
                rules += [rule for rule in candidates if isinstance(rule, dict) and "verbs" in rule]
    return rules


def _rules_from_tables(text: str) -> list[dict[str, Any]]:
    """Rows of markdown tables whose header names an API group, resources and verbs."""
    rules: list[dict[str, Any]] = []
    columns: dict[str, int] | None = None
    for line in text.splitlines():
        if not line.strip().startswith("|"):
            columns = None
            continue
        cells = [cell.strip().strip("`").strip() for cell in line.strip().strip("|").split("|")]
        lowered = [cell.lower() for cell in cells]
        if columns is None:
            found = {
                name: next((i for i, cell in enumerate(lowered) if name in cell), -1)
                for name in ("group", "resource", "verb")
            }
            columns = found if min(found.values()) >= 0 else None
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row

        def words(cell: str) -> list[str]:
            return [w.strip("`") for w in re.split(r"[,\s]+", cell) if w.strip("`")]

        group = cells[columns["group"]].strip('"')
        rules.append(
            {
                "apiGroups": ["" if group.lower() in {"", "core", '""', "(core)", "v1"} else group],
                "resources": words(cells[columns["resource"]]),
                "verbs": words(cells[columns["verb"]]),
            }
        )
    return rules


@cache
def operator_needs() -> list[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples the operator needs, from operator/asbru_operator/RBAC.md."""
    text = RBAC_MD.read_text()
    rules = _rules_from_yaml_blocks(text) or _rules_from_tables(text)
    assert rules, f"{RBAC_MD} lists no rules this test understands (YAML block or table)"
    return sorted(
        {
            (group, resource, verb)
            for rule in rules
            for group in rule.get("apiGroups", [""])
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
    )


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        for rule in rules
    )


def test_rbac_all_namespaces_covers_operator_needs() -> None:
    rendered = _render("defaults")
    role = rendered.one("ClusterRole", f"{RELEASE}-operator")
    binding = rendered.one("ClusterRoleBinding", f"{RELEASE}-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": NAMESPACE}
    ]
    needs = [need for need in operator_needs() if need[:2] not in ONLY_WHEN_NAMESPACED]
    missing = [need for need in needs if not allows(role["rules"], *need)]
    assert missing == []
    # Least privilege: nothing RBAC.md does not list.
    assert granted(role["rules"]) - set(needs) - ESCALATION_EXTRAS == set()
    assert not rendered.of_kind("Role")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]


def test_rbac_watch_namespaces_uses_roles() -> None:
    rendered = _render("full")
    roles = {r["metadata"]["namespace"]: r for r in rendered.of_kind("Role")}
    bindings = {b["metadata"]["namespace"]: b for b in rendered.of_kind("RoleBinding")}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    cluster_role = rendered.one("ClusterRole")
    for need in operator_needs():
        group, resource, _ = need
        if (group, resource) in CLUSTER_SCOPED:
            assert allows(cluster_role["rules"], *need), need
        else:
            assert not allows(cluster_role["rules"], *need), f"cluster-wide grant of {need}"
            for namespace, role in roles.items():
                assert allows(role["rules"], *need), (namespace, need)
    assert granted(cluster_role["rules"]) <= set(operator_needs())
    for role in roles.values():
        assert granted(role["rules"]) - set(operator_needs()) - ESCALATION_EXTRAS == set()
    for namespace, binding in bindings.items():
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": NAMESPACE}
        ]


@pytest.mark.parametrize(("scenario", "kind"), [("defaults", "ClusterRole"), ("full", "Role")])
def test_operator_may_grant_the_gateway_role(scenario: str, kind: str) -> None:
    """RBAC escalation prevention: the operator holds everything the gateway's Role grants."""
    from asbru_operator.render.names import GatewayRef  # noqa: PLC0415 - the operator's, on demand
    from asbru_operator.render.objects import build_role  # noqa: PLC0415

    gateway_role = build_role(GatewayRef(name="asbru", namespace="team-a", uid="0"))
    (holder,) = [
        obj
        for obj in _render(scenario).of_kind(kind)
        if obj["metadata"].get("namespace", "team-a") == "team-a"
    ]
    for need in sorted(granted(gateway_role["rules"])):
        assert allows(holder["rules"], *need), need


# --- values schema -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"bogus": True},
        {"operator": {"replicas": 2}},
        {"image": {"tag": "x", "digest": "sha256:abc"}},
        {"defaultGateway": {"enabeld": True}},
        {"tests": {"enabled": True, "curl": True}},
        {"operator": {"watchNamespaces": ["Not_A_Namespace"]}},
        {"image": {"pullPolicy": "Sometimes"}},
    ],
    ids=["top", "operator", "image", "default-gateway", "tests", "namespace-name", "pull-policy"],
)
def test_values_schema_rejects(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_values_schema_accepts_scenarios(chart: helm.Chart, scenario: str) -> None:
    chart.validate_schema(SCENARIOS[scenario])


def test_values_yaml_is_schema_valid_and_strict(chart: helm.Chart) -> None:
    assert chart.schema is not None
    jsonschema.Draft7Validator.check_schema(chart.schema)
    jsonschema.validate(chart.values, chart.schema, cls=jsonschema.Draft7Validator)

    def walk(node: dict[str, Any], where: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, where
        for key, child in node.get("properties", {}).items():
            walk(child, f"{where}.{key}")

    walk(chart.schema, "values")


# --- NOTES and helm test ------------------------------------------------------------------------------


def test_notes_tell_what_to_do_next() -> None:
    notes = _render("defaults").notes
    assert "examples/quickstart.yaml" in notes
    assert "create secret generic asbru-provider-keys" in notes
    assert f"http://asbru.{NAMESPACE}.svc:8080/v1/chat/completions" in notes
    assert "helm uninstall" in notes
    assert "crd" in notes.lower()
    assert f"helm test {RELEASE}" in notes


def test_notes_with_watched_namespaces_and_default_gateway() -> None:
    notes = _render("full").notes
    assert "team-a, team-b" in notes
    assert "my-llm-keys" in notes
    assert "examples/quickstart.yaml" not in notes
    # The default gateway lives in the release namespace, which the operator does not watch here.
    assert "WARNING" in notes


def test_helm_test_pod_checks_readyz(rendered: Rendered) -> None:
    (path,) = [p for p in rendered.manifests if "/templates/tests/" in p]
    (pod,) = rendered.manifests[path]
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False
    (container,) = pod["spec"]["containers"]
    assert container["image"] == rendered.operator["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"] == ["python", "-c"]
    script, url, attempts = container["args"]
    compile(script, "helm-test", "exec")  # valid Python
    assert "urllib.request" in script
    assert "curl" not in script
    assert re.fullmatch(r"http://[a-z0-9-]+\.[a-z0-9-]+\.svc:8080/readyz", url), url
    assert int(attempts) >= 1


def test_helm_test_can_be_disabled(chart: helm.Chart) -> None:
    raw = chart.render({"tests": {"enabled": False}}, name=RELEASE, namespace=NAMESPACE)
    assert not any(load_all(text) for path, text in raw.items() if "/templates/tests/" in path)


# --- Dockerfile -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


@cache
def dockerfile() -> list[Instruction]:
    """Instructions of the Dockerfile (continuations joined, comments dropped), with their stage."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw_line in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw_line.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, " ".join(args.split())))
    assert not pending, "dangling line continuation"
    return instructions


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not the exec form"
    return value


def test_dockerfile_is_multi_stage_slim() -> None:
    instructions = dockerfile()
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2
    for base in froms:
        image = base.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image.startswith("python:3.11-slim"), image
    assert froms[0].endswith(" AS builder")
    runtime = len(froms) - 1
    copies = [i.args for i in instructions if i.stage == runtime and i.keyword == "COPY"]
    assert any(c.startswith("--from=builder ") for c in copies)
    assert not [c for c in copies if not c.startswith("--from=")], "runtime copies no build context"


def test_dockerfile_installs_with_constraints() -> None:
    instructions = dockerfile()
    runs = [i.args for i in instructions if i.stage == 0 and i.keyword == "RUN"]
    installs = [cmd for run in runs for cmd in run.split("&&") if "pip install" in cmd]
    assert installs
    for cmd in installs:
        argv = shlex.split(cmd)
        assert "--no-cache-dir" in argv
        assert argv[argv.index("-c") + 1] == "constraints.txt"
        assert argv[-1] == "."
    copied = " ".join(i.args for i in instructions if i.stage == 0 and i.keyword == "COPY")
    assert "constraints.txt" in copied


def test_dockerfile_copies_what_the_build_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"], "constraints.txt"}
    needed |= set(pyproject["tool"]["setuptools"]["packages"]["find"]["where"])
    sources: set[str] = set()
    for i in dockerfile():
        if i.stage == 0 and i.keyword == "COPY" and not i.args.startswith("--from"):
            *srcs, _dest = i.args.split()
            sources |= {s.rstrip("/") for s in srcs}
    assert needed <= sources, needed - sources
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    # An allow-list: everything is ignored, then exactly what the build copies is re-included.
    assert ignore[0] == "*"
    reincluded = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert needed <= reincluded, needed - reincluded


def test_dockerfile_runtime_is_non_root_asbru() -> None:
    instructions = dockerfile()
    runtime = max(i.stage for i in instructions)
    final = [i for i in instructions if i.stage == runtime]
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user.isdigit()
    assert int(user) == UID
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    # `asbru serve` defaults to 127.0.0.1: the image must listen on all interfaces.
    assert "ASBRU_HOST=0.0.0.0" in env
    (entrypoint,) = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert _exec_form(entrypoint) == ["asbru"]
    (cmd,) = [i.args for i in final if i.keyword == "CMD"]
    assert _exec_form(cmd) == ["serve"]
    assert "8080" in [i.args for i in final if i.keyword == "EXPOSE"]
    # `asbru` is an installed console script; `operator` is the other subcommand.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "asbru" in pyproject["project"]["scripts"]
    assert {"serve", "operator"} <= set(pyproject["project"]["entry-points"]["asbru.commands"])


# --- the default gateway --------------------------------------------------------------------------------


def _gateway_objects(rendered: Rendered) -> list[dict[str, Any]]:
    return [obj for obj in rendered.objects if obj["apiVersion"].startswith(f"{GROUP}/")]


def test_no_custom_resources_by_default() -> None:
    assert _gateway_objects(_render("defaults")) == []
    assert not _render("defaults").of_kind("Secret")


def test_default_gateway_with_existing_secret() -> None:
    rendered = _render("full")
    assert not rendered.of_kind("Secret"), "the user's Secret is used, none is created"
    gateway = rendered.one("LLMGateway", "asbru")
    assert gateway["spec"]["service"]["port"] == 8080
    providers = rendered.of_kind("LLMProvider")
    assert {p["spec"]["type"] for p in providers} == {"openai", "anthropic"}
    refs = {
        (k["secretKeyRef"]["name"], k["secretKeyRef"]["key"]) for p in providers for k in p["spec"]["keys"]
    }
    assert refs == {("my-llm-keys", "openai-api-key"), ("my-llm-keys", "anthropic-api-key")}


def test_default_gateway_with_chart_secret() -> None:
    rendered = _render("default-gateway-chart-secret")
    secret = rendered.one("Secret")
    assert secret["stringData"] == {"openai-api-key": "sk-test", "anthropic-api-key": "sk-ant-test"}
    for provider in rendered.of_kind("LLMProvider"):
        for key in provider["spec"]["keys"]:
            assert key["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert key["secretKeyRef"]["key"] in secret["stringData"]


def test_default_gateway_needs_keys(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match="existingSecret"):
        chart.render({"defaultGateway": {"enabled": True}}, name=RELEASE, namespace=NAMESPACE)


def test_default_gateway_renders_to_a_valid_config() -> None:
    """The operator's own renderer turns the release's resources into the gateway's config."""
    rendered = _render("default-gateway-chart-secret")
    config = _operator_config(rendered.objects, NAMESPACE, {"asbru-provider-keys": rendered.one("Secret")})
    (route,) = config.routes
    assert route.name == "chat"
    assert [(t.provider, t.priority) for t in route.targets] == [("asbru-openai", 0), ("asbru-anthropic", 1)]
    assert [p.type for p in config.plugins] == ["telemetry"]


def test_governance_uses_the_charts_redis() -> None:
    rendered = _render("governance-with-redis")
    assert rendered.one("Deployment", f"{RELEASE}-redis")["spec"]["replicas"] == 1
    service = rendered.one("Service", f"{RELEASE}-redis")
    config = _operator_config(rendered.objects, NAMESPACE, {"asbru-provider-keys": rendered.one("Secret")})
    assert config.governance is not None and config.governance.require_virtual_key
    assert config.governance.redis is not None
    assert config.governance.redis.url == f"redis://{service['metadata']['name']}.{NAMESPACE}.svc:6379/0"


def test_an_existing_redis_by_url_and_secret() -> None:
    values = {
        "redis": {
            "url": "redis://redis.infra.svc:6379/2",
            "passwordSecret": {"name": "redis-auth", "key": "pw"},
        },
        "defaultGateway": {
            "enabled": True,
            "providerKeys": {"existingSecret": "k"},
            "governance": {"enabled": True},
        },
    }
    with helm.Chart.load(CHART_DIR) as loaded:
        raw = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = [obj for path, text in raw.items() if path.endswith(".yaml") for obj in load_all(text)]
    gateway = next(obj for obj in objects if obj["kind"] == "LLMGateway")
    assert gateway["spec"]["governance"]["redis"] == {
        "url": "redis://redis.infra.svc:6379/2",
        "passwordSecretRef": {"name": "redis-auth", "key": "pw"},
    }
    assert not [obj for obj in objects if obj["metadata"]["name"].endswith("-redis")]


def test_helm_test_targets_the_default_gateway() -> None:
    rendered = _render("default-gateway-chart-secret")
    pod = rendered.one("Pod")
    assert pod["spec"]["containers"][0]["args"][1] == f"http://asbru.{NAMESPACE}.svc:8080/readyz"
    assert "http://asbru.asbru-system.svc:8080/v1/chat/completions" in rendered.notes


# --- the quick start ------------------------------------------------------------------------------------


@cache
def quickstart() -> list[dict[str, Any]]:
    return load_all(QUICKSTART.read_text())


def _operator_config(
    objects: list[dict[str, Any]], namespace: str, secrets: dict[str, dict[str, Any]]
) -> Any:
    """``GatewayConfig`` of the one LLMGateway in ``objects``, rendered by the operator's code."""
    from asbru_operator.render.config import Sources, render_config  # noqa: PLC0415 - the operator's, on demand

    def body(obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("namespace", namespace)
        return obj

    def of(kind: str) -> list[dict[str, Any]]:
        return [body(obj) for obj in objects if obj["kind"] == kind]

    (gateway,) = of("LLMGateway")
    decoded = {name: dict(secret.get("stringData", {})) for name, secret in secrets.items()}
    sources = Sources(
        gateway=gateway,
        providers=of("LLMProvider"),
        routes=of("LLMRoute"),
        plugins=of("LLMPlugin"),
        secrets=decoded,
    )
    return render_config(sources).config


def test_quickstart_objects_are_valid() -> None:
    objects = quickstart()
    assert sorted(obj["kind"] for obj in objects) == sorted(
        ["Secret", "LLMGateway", "LLMProvider", "LLMProvider", "LLMRoute", "LLMPlugin"]
    )
    for obj in objects:
        validate(obj)
        # `kubectl -n <namespace> apply -f`: the namespace is the user's choice.
        assert "namespace" not in obj["metadata"]


def test_quickstart_wiring() -> None:
    objects = quickstart()
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert secret["metadata"]["name"] == "asbru-provider-keys"
    # NOTES: `kubectl apply -l 'app.kubernetes.io/component!=provider-keys'` skips exactly the Secret.
    skipped = [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "provider-keys"
    ]
    assert skipped == [secret]
    assert set(secret["stringData"]) == {"openai-api-key", "anthropic-api-key"}

    (gateway,) = [o for o in objects if o["kind"] == "LLMGateway"]
    assert gateway["metadata"]["name"] == "asbru"
    assert gateway["spec"]["service"]["port"] == 8080  # http://asbru.<ns>.svc:8080

    providers = {o["metadata"]["name"]: o for o in objects if o["kind"] == "LLMProvider"}
    assert {name: p["spec"]["type"] for name, p in providers.items()} == {
        "openai": "openai",
        "anthropic": "anthropic",
    }
    for provider in providers.values():
        for key in provider["spec"]["keys"]:
            assert key["secretKeyRef"]["name"] == secret["metadata"]["name"]
            assert key["secretKeyRef"]["key"] in secret["stringData"]

    (route,) = [o for o in objects if o["kind"] == "LLMRoute"]
    assert route["metadata"]["name"] == "chat"
    targets = sorted(route["spec"]["targets"], key=lambda t: t["priority"])
    assert [t["provider"] for t in targets] == ["openai", "anthropic"]
    assert targets[0]["priority"] < targets[1]["priority"]
    for target in targets:
        assert target["model"] in providers[target["provider"]]["spec"]["models"]
    assert route["spec"]["fallbackOn"] == ["rate_limited", "server_error", "timeout", "connect_error"]

    (plugin,) = [o for o in objects if o["kind"] == "LLMPlugin"]
    assert plugin["metadata"]["name"] == "telemetry"
    assert plugin["spec"]["type"] == "telemetry"


def test_quickstart_renders_to_a_valid_config() -> None:
    """What the operator would hand the gateway for the quick start, through its own renderer."""
    objects = quickstart()
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    config = _operator_config(objects, "default", {secret["metadata"]["name"]: secret})
    assert {p.name: p.type for p in config.providers} == {"openai": "openai", "anthropic": "anthropic"}
    (route,) = config.routes
    assert route.name == "chat"
    assert [t.provider for t in route.targets] == ["openai", "anthropic"]
    assert {str(trigger) for trigger in route.fallback_on} == {
        "rate_limited",
        "server_error",
        "timeout",
        "connect_error",
    }
    assert [(p.name, p.type) for p in config.plugins] == [("telemetry", "telemetry")]


# --- the validator itself --------------------------------------------------------------------------------


def _provider(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "LLMProvider",
        "metadata": {"name": "p"},
        "spec": {"type": "openai", **spec},
    }


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        (_provider(baseUrl="https://api.example.com"), jsonschema.ValidationError),  # typo: baseURL
        (_provider(keys=[{"name": "k", "secretRef": {"name": "s", "key": "k"}}]), jsonschema.ValidationError),
        (_provider(baseURL="ftp://api.example.com"), AssertionError),  # CEL: http(s) only
        (_provider(baseURL="http://10.0.0.1:8000"), AssertionError),  # CEL: private address
        (
            _provider(
                keys=[
                    {"name": "k", "secretKeyRef": {"name": "s", "key": "a"}},
                    {"name": "k", "secretKeyRef": {"name": "s", "key": "b"}},
                ]
            ),
            AssertionError,  # CEL: unique key names
        ),
    ],
    ids=["unknown-field", "unknown-nested-field", "cel-scheme", "cel-private", "cel-unique-keys"],
)
def test_custom_resource_validation_is_not_vacuous(obj: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        validate(obj)
    validate(_provider(baseURL="https://api.example.com/v1"))


@pytest.mark.parametrize(
    ("values", "url"),
    [
        ({}, f"http://asbru.{NAMESPACE}.svc:8080/readyz"),
        (
            {
                "defaultGateway": {
                    "enabled": True,
                    "name": "llm",
                    "servicePort": 80,
                    "providerKeys": {"existingSecret": "k"},
                }
            },
            f"http://llm.{NAMESPACE}.svc:80/readyz",
        ),
        (
            {"tests": {"gatewayName": "edge", "gatewayNamespace": "ai", "port": 9000}},
            "http://edge.ai.svc:9000/readyz",
        ),
        ({"operator": {"watchNamespaces": ["team-a"]}}, "http://asbru.team-a.svc:8080/readyz"),
    ],
    ids=["quickstart", "default-gateway", "explicit", "watched-namespace"],
)
def test_helm_test_and_notes_agree_on_the_gateway(
    chart: helm.Chart, values: dict[str, Any], url: str
) -> None:
    raw = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    (pod,) = [obj for path, text in raw.items() if "/templates/tests/" in path for obj in load_all(text)]
    assert pod["spec"]["containers"][0]["args"][1] == url
    notes = raw[f"{CHART_NAME}/templates/NOTES.txt"]
    assert url in notes
    assert url.replace("/readyz", "/v1/chat/completions") in notes


# --- contracts with the CLI -------------------------------------------------------------------------------


def _asbru_parser() -> argparse.ArgumentParser:
    """The `asbru` command line as the image's ENTRYPOINT sees it (both subcommands)."""
    from asbru_gateway.cli import register_serve  # noqa: PLC0415
    from asbru_operator.cli import register  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="asbru")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register_serve(subparsers)
    register(subparsers)
    return parser


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_operator_args_parse(scenario: str) -> None:
    (container,) = _render(scenario).operator["spec"]["template"]["spec"]["containers"]
    args = _asbru_parser().parse_args(container["args"])
    assert args.command == "operator"
    assert args.gateway_image == container["image"]
    watched = SCENARIOS[scenario].get("operator", {}).get("watchNamespaces", [])
    assert args.namespace == watched
    assert args.all_namespaces is (not watched)


def test_image_defaults_serve_on_all_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    final = [i for i in dockerfile() if i.stage == max(j.stage for j in dockerfile())]
    env = dict(pair.split("=", 1) for i in final if i.keyword == "ENV" for pair in shlex.split(i.args))
    for name, value in env.items():
        if name.startswith("ASBRU_"):
            monkeypatch.setenv(name, value)
    (cmd,) = [i.args for i in final if i.keyword == "CMD"]
    args = _asbru_parser().parse_args(_exec_form(cmd))
    assert args.command == "serve"
    assert args.host == "0.0.0.0"
    assert args.port == 8080


def test_constraints_file_is_usable_by_the_image_build() -> None:
    """`pip install -c constraints.txt .` refuses editable constraints and a pin of asbru itself."""
    constraints = ROOT / "constraints.txt"
    if not constraints.exists():
        pytest.skip("constraints.txt is not there yet")
    lines = [line.split("#", 1)[0].strip() for line in constraints.read_text().splitlines()]
    lines = [line for line in lines if line]
    assert not [line for line in lines if line.startswith(("-e", "--editable"))], (
        "use pip freeze --exclude-editable"
    )
    assert not [line for line in lines if re.match(r"asbru\b", line, flags=re.IGNORECASE)]
    assert all(("==" in line or " @ " in line) for line in lines if not line.startswith("-")), "pins only"
