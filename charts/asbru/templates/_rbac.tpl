{{/*
The operator's permissions, exactly those listed in operator/asbru_operator/RBAC.md (every one is
used by the code). Owned objects are garbage-collected through ownerReferences: no delete verbs.
*/}}
{{- define "asbru.operatorNamespacedRules" -}}
# The custom resources: kopf watches them and patches its annotations (and removes the finalizer
# older operators put on gateways; this one sets none); the operator reads them fresh when rendering.
- apiGroups: ["asbru.dev"]
  resources: ["llmgateways", "llmproviders", "llmroutes", "llmplugins", "llmmcpservers", "llmvirtualkeys", "llmteams"]
  verbs: ["get", "list", "watch", "patch"]
# Conditions, revision, N/M programmed, scale view.
- apiGroups: ["asbru.dev"]
  resources: ["llmgateways/status", "llmproviders/status", "llmroutes/status", "llmplugins/status", "llmmcpservers/status", "llmvirtualkeys/status", "llmteams/status"]
  verbs: ["get", "patch"]
# Owner references with blockOwnerDeletion (OwnerReferencesPermissionEnforcement).
- apiGroups: ["asbru.dev"]
  resources: ["llmgateways/finalizers"]
  verbs: ["update"]
# Provider key Secrets (watched for rotation) and the gateway's own Secret (server-side apply).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The gateway's config ConfigMap. list/watch are not used by the operator itself: RBAC escalation
# prevention requires it to hold what the gateway's Role grants (get/list/watch on its ConfigMap).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts"]
  verbs: ["get", "create", "patch"]
# The gateway's pods, probed on /readyz for the Programmed condition.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
# Kubernetes Events posted by kopf (whichever API group the server offers).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch"]
# The gateway's Role (read its own ConfigMap/Secret by resourceNames) and RoleBinding.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/*
Cluster-scoped: kopf notices CRDs installed after it started and, when it watches a list of
namespaces, follows namespaces appearing and disappearing (it degrades to a warning without).
*/}}
{{- define "asbru.operatorClusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.operator.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}
