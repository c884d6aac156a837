{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "bigk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped full name: "<release>-bigk" unless the release is already called bigk. */}}
{{- define "bigk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bigk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "bigk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bigk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bigk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bigk.serveSelectorLabels" -}}
{{ include "bigk.selectorLabels" . }}
app.kubernetes.io/component: scheduler
{{- end -}}

{{- define "bigk.agentSelectorLabels" -}}
{{ include "bigk.selectorLabels" . }}
app.kubernetes.io/component: gpu-agent
{{- end -}}

{{- define "bigk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bigk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bigk.agentServiceAccountName" -}}
{{- printf "%s-agent" (include "bigk.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bigk.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "bigk.tokenSecretName" -}}
{{- default (printf "%s-token" (include "bigk.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "bigk.databaseSecretName" -}}
{{- default (printf "%s-database" (include "bigk.fullname" .)) .Values.state.database.existingSecret -}}
{{- end -}}

{{- define "bigk.usesDatabase" -}}
{{- if or .Values.state.database.url .Values.state.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Refuse configurations that would install but not work. */}}
{{- define "bigk.validate" -}}
{{- if and (gt (int .Values.serve.replicas) 1) (not (include "bigk.usesDatabase" .)) -}}
{{- fail "serve.replicas > 1 needs a shared database: set state.database.url or state.database.existingSecret (SQLite on a ReadWriteOnce volume serves one replica only)" -}}
{{- end -}}
{{- if and .Values.jobspecs.gitSync.enabled (not .Values.jobspecs.gitSync.repo) -}}
{{- fail "jobspecs.gitSync.enabled needs jobspecs.gitSync.repo" -}}
{{- end -}}
{{- if and .Values.jobspecs.gitSync.enabled (or .Values.jobspecs.files .Values.jobspecs.existingConfigMap) -}}
{{- fail "choose one source of job specs: jobspecs.gitSync, jobspecs.files or jobspecs.existingConfigMap" -}}
{{- end -}}
{{- if not (has .Values.serve.podAntiAffinity (list "soft" "hard" "none")) -}}
{{- fail (printf "serve.podAntiAffinity must be soft, hard or none, not %q" .Values.serve.podAntiAffinity) -}}
{{- end -}}
{{- end -}}
