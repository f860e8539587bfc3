{{/* Names, labels and the operator configuration shared by the templates. */}}

{{- define "cijob-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: <release>-<chart>, or the release name when it already holds the chart's. */}}
{{- define "cijob-operator.fullname" -}}
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

{{- define "cijob-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cijob-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cijob-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cijob-operator.labels" -}}
helm.sh/chart: {{ include "cijob-operator.chart" . }}
{{ include "cijob-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cijob-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cijob-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease that elects the active replica; named after the release so that two releases
in one namespace never share it. */}}
{{- define "cijob-operator.leaseName" -}}
{{- include "cijob-operator.fullname" . }}
{{- end }}

{{- define "cijob-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The operator's configuration file: the keys of cijob.config.OperatorConfig. */}}
{{- define "cijob-operator.config" -}}
{{- $defaults := dict "services" .Values.defaults.services "timeout" .Values.defaults.timeout }}
{{- with .Values.defaults.image }}
{{- $_ := set $defaults "image" . }}
{{- end }}
{{- $config := dict
  "defaults" $defaults
  "requireDigest" .Values.requireDigest
  "namespaces" .Values.watchNamespaces
  "imagePullGraceSeconds" .Values.imagePullGraceSeconds
  "pendingTimeoutSeconds" (int .Values.pendingTimeoutSeconds)
  "afterScriptTimeoutSeconds" .Values.afterScriptTimeoutSeconds
  "servicesWaitTimeoutSeconds" (int .Values.servicesWaitTimeoutSeconds)
  "credentialHelperTimeoutSeconds" .Values.credentialHelperTimeoutSeconds
  "events" .Values.events
  "workers" (int .Values.workers)
  "metrics" (dict "enabled" .Values.metrics.enabled "namespaceLabel" .Values.metrics.namespaceLabel)
  "helperImage" (.Values.helperImage | default (include "cijob-operator.image" .))
}}
{{- with .Values.maxRunningJobsPerNamespace }}
{{- $_ := set $config "maxRunningJobsPerNamespace" (int .) }}
{{- end }}
{{- with .Values.allowedPullPolicies }}
{{- $_ := set $config "allowedPullPolicies" . }}
{{- end }}
{{- with .Values.logArchive }}
{{- if .url }}
{{- $s3 := dict "pathStyle" .s3.pathStyle }}
{{- range $k := list "endpoint" "region" "credentialsSecret" }}
{{- with index $.Values.logArchive.s3 $k }}
{{- $_ := set $s3 $k . }}
{{- end }}
{{- end }}
{{- $_ := set $config "logArchive" (dict "url" .url "s3" $s3 "maxBytes" (int64 .maxBytes)) }}
{{- end }}
{{- end }}
{{- $podTemplate := dict "overwriteAllowed" .Values.podTemplate.overwriteAllowed }}
{{- range $key, $value := .Values.podTemplate }}
{{- if or $value (kindIs "bool" $value) }}
{{- $_ := set $podTemplate $key $value }}
{{- end }}
{{- end }}
{{- $_ := set $config "podTemplate" $podTemplate }}
{{- $scope := dict }}
{{- range $key, $selector := .Values.credentialScope }}
{{- if or $selector.matchLabels $selector.matchExpressions }}
{{- $_ := set $scope $key $selector }}
{{- end }}
{{- end }}
{{- with $scope }}
{{- $_ := set $config "credentialScope" . }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* The operator's permissions in a watched namespace (or in all of them). */}}
{{- define "cijob-operator.rules" -}}
# CiJobs: watched; patched for kopf's finalizer and progress annotations; deleted after
# ttlSecondsAfterFinished.
- apiGroups: [cijob.dev]
  resources: [cijobs]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [cijob.dev]
  resources: [cijobs/status]
  verbs: [get, patch, update]
# One pod per attempt: created, watched; patch lowers an ended attempt's activeDeadlineSeconds
# (stopped, its log kept); delete only for a pod no kubelet started (docs/lifecycle.md).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
# get: Secrets named by a job's variablesFrom; create, patch: the job's generated pull Secret.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch]
{{- if .Values.logArchive.url }}
# The log archive reads each ended attempt's container logs once (docs/logs.md).
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- end }}
# ConfigMaps named by a job's variablesFrom.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# Events on CiJobs: the operator's own and kopf's warnings, both core/v1 Events.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}
