{{/* Chart name, overridable. */}}
{{- define "asbru.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release already contains the chart name. */}}
{{- define "asbru.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "asbru.operatorName" -}}
{{- printf "%s-operator" (include "asbru.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "asbru.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "asbru.labels" -}}
helm.sh/chart: {{ include "asbru.chart" . }}
app.kubernetes.io/name: {{ include "asbru.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: asbru
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the operator pods. */}}
{{- define "asbru.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "asbru.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "asbru.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "asbru.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "asbru.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Pod- and container-level security contexts: the "restricted" Pod Security Standard, with the
image's own non-root user (uid/gid 10001). Not configurable on purpose.
*/}}
{{- define "asbru.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "asbru.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Namespace for the quick start: the release namespace when the operator watches it, else the first
watched namespace.
*/}}
{{- define "asbru.quickstartNamespace" -}}
{{- $watched := .Values.operator.watchNamespaces | default (list .Release.Namespace) }}
{{- if has .Release.Namespace $watched }}{{ .Release.Namespace }}{{ else }}{{ first $watched }}{{ end }}
{{- end }}

{{/*
The gateway NOTES and the helm test talk to: tests.gatewayName/gatewayNamespace if set, else the
default gateway (release namespace), else the quick start's "asbru".
*/}}
{{- define "asbru.testGatewayName" -}}
{{- default (ternary .Values.defaultGateway.name "asbru" .Values.defaultGateway.enabled) .Values.tests.gatewayName }}
{{- end }}

{{- define "asbru.testGatewayPort" -}}
{{- if .Values.tests.port }}{{ .Values.tests.port }}
{{- else if and .Values.defaultGateway.enabled (not .Values.tests.gatewayName) }}{{ .Values.defaultGateway.servicePort }}
{{- else }}8080
{{- end }}
{{- end }}

{{- define "asbru.testGatewayNamespace" -}}
{{- default (ternary .Release.Namespace (include "asbru.quickstartNamespace" .) .Values.defaultGateway.enabled) .Values.tests.gatewayNamespace }}
{{- end }}

{{/* Secret holding the default gateway's provider keys: the user's, or the chart-created one. */}}
{{- define "asbru.providerKeysSecret" -}}
{{- default (printf "%s-provider-keys" (include "asbru.fullname" .)) .Values.defaultGateway.providerKeys.existingSecret }}
{{- end }}

{{/* The Redis URL gateways use for governance: the deployed one, else redis.url (may be empty). */}}
{{- define "asbru.redisUrl" -}}
{{- if .Values.redis.deploy -}}
{{- printf "redis://%s-redis.%s.svc:6379/0" (include "asbru.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- .Values.redis.url -}}
{{- end -}}
{{- end }}
