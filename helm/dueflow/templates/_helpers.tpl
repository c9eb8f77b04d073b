{{/* The chart's name, and the release's full name (a prefix of every object). */}}
{{- define "dueflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dueflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "dueflow.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "dueflow.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "dueflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "dueflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dueflow
{{- end }}

{{/* Selector labels of one role: call with (dict "root" $ "role" "api"). */}}
{{- define "dueflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dueflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "dueflow.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret every secretKeyRef names. */}}
{{- define "dueflow.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.create }}
{{- printf "%s-secrets" (include "dueflow.fullname" .) }}
{{- else }}
{{- fail "secrets: set secrets.existingSecret to a Secret you created, or secrets.create=true (development only)" }}
{{- end }}
{{- end }}

{{/* Names of the Dapr resources; the pub/sub and state store names reach the apps as env. */}}
{{- define "dueflow.pubsub" -}}{{ include "dueflow.fullname" . }}-pubsub{{- end }}
{{- define "dueflow.pubsubRealtime" -}}{{ include "dueflow.fullname" . }}-pubsub-realtime{{- end }}
{{- define "dueflow.pubsubRealtimeFeed" -}}{{ include "dueflow.fullname" . }}-pubsub-realtime-feed{{- end }}
{{- define "dueflow.statestore" -}}{{ include "dueflow.fullname" . }}-statestore{{- end }}
{{- define "dueflow.secretstore" -}}{{ include "dueflow.fullname" . }}-secretstore{{- end }}
{{- define "dueflow.daprConfig" -}}{{ include "dueflow.fullname" . }}-dapr{{- end }}

{{/* Every role as JSON: name, app id, port, the dueflow arguments and its values (over the
defaults). The workers are the keys of .Values.workers. */}}
{{- define "dueflow.roles" -}}
{{- $roles := list }}
{{- $api := mergeOverwrite (deepCopy .Values.defaults) (deepCopy .Values.api) }}
{{- $args := list "serve" "--transport" .Values.api.transport "--host" "0.0.0.0" "--port" (toString .Values.api.port) }}
{{- $roles = append $roles (dict "name" "api" "appId" .Values.api.appId "port" .Values.api.port "args" $args "values" $api) }}
{{- range $name, $worker := .Values.workers }}
{{- $merged := mergeOverwrite (deepCopy $.Values.defaults) (deepCopy $worker) }}
{{- $args := list "worker" $name "--host" "0.0.0.0" "--port" (toString $worker.port) }}
{{- $roles = append $roles (dict "name" $name "appId" $worker.appId "port" $worker.port "args" $args "values" $merged) }}
{{- end }}
{{- toJson (dict "roles" $roles) }}
{{- end }}

{{/* The app ids of every role, as JSON list. */}}
{{- define "dueflow.appIds" -}}
{{- $ids := list .Values.api.appId }}
{{- range $name, $worker := .Values.workers }}
{{- $ids = append $ids $worker.appId }}
{{- end }}
{{- toJson $ids }}
{{- end }}

{{/* The apps whose components read a secret: the state store's (API, reminders), and every
pub/sub app when Kafka needs a password or certificates. */}}
{{- define "dueflow.secretStoreApps" -}}
{{- if or (ne .Values.kafka.auth.type "none") .Values.kafka.tls.caCert }}
{{- include "dueflow.appIds" . }}
{{- else }}
{{- toJson (list .Values.api.appId .Values.workers.reminders.appId) }}
{{- end }}
{{- end }}

{{/* Host names the API answers: its Service's, the ingress hosts and any configured. */}}
{{- define "dueflow.apiHosts" -}}
{{- $service := printf "%s-api" (include "dueflow.fullname" .) }}
{{- $hosts := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) }}
{{- range .Values.api.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- join "," (concat $hosts .Values.config.allowedHosts) }}
{{- end }}

{{/* A variable from the Secret. */}}
{{- define "dueflow.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "dueflow.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* The environment of one role: call with (dict "root" $ "role" "api"). */}}
{{- define "dueflow.env" -}}
{{- $root := .root }}
{{- $keys := $root.Values.secrets.keys }}
- name: DUEFLOW_EVENT_BUS
  value: dapr
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_DATABASE_URL" "key" $keys.databaseUrl) }}
- name: DUEFLOW_TIMEZONE
  value: {{ $root.Values.config.timezone | quote }}
- name: DUEFLOW_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
- name: DUEFLOW_LOG_FORMAT
  value: {{ $root.Values.config.logFormat | quote }}
{{- with $root.Values.config.otlpEndpoint }}
- name: DUEFLOW_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: DUEFLOW_DAPR_PUBSUB
  value: {{ eq .role "realtime" | ternary (include "dueflow.pubsubRealtime" $root) (include "dueflow.pubsub" $root) }}
{{- if eq .role "realtime" }}
- name: DUEFLOW_REALTIME_FEED_PUBSUB
  value: {{ include "dueflow.pubsubRealtimeFeed" $root }}
{{- end }}
- name: DUEFLOW_DAPR_STATESTORE
  value: {{ include "dueflow.statestore" $root }}
- name: DUEFLOW_API_APP_ID
  value: {{ $root.Values.api.appId }}
- name: DUEFLOW_AUDIT_APP_ID
  value: {{ $root.Values.workers.audit.appId }}
{{- if has .role (list "api" "audit" "recurrence") }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_INTERNAL_TOKEN" "key" $keys.internalToken) }}
{{- end }}
{{- if has .role (list "api" "realtime") }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_TOKENS" "key" $keys.tokens "optional" true) }}
{{- with $root.Values.config.oauth }}
{{- if .issuer }}
- name: DUEFLOW_OAUTH_ISSUER
  value: {{ .issuer | quote }}
- name: DUEFLOW_OAUTH_AUDIENCE
  value: {{ required "config.oauth.audience is needed with config.oauth.issuer" .audience | quote }}
- name: DUEFLOW_OAUTH_JWKS_URL
  value: {{ required "config.oauth.jwksUrl is needed with config.oauth.issuer" .jwksUrl | quote }}
- name: DUEFLOW_OAUTH_ALGORITHMS
  value: {{ .algorithms | quote }}
- name: DUEFLOW_OAUTH_USER_CLAIM
  value: {{ .userClaim | quote }}
{{- end }}
{{- end }}
- name: DUEFLOW_ALLOWED_HOSTS
  value: {{ include "dueflow.apiHosts" $root | quote }}
{{- with $root.Values.config.allowedOrigins }}
- name: DUEFLOW_ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}
{{- if and (eq .role "audit") $root.Values.config.auditRetentionDays }}
- name: DUEFLOW_AUDIT_RETENTION_DAYS
  value: {{ $root.Values.config.auditRetentionDays | quote }}
{{- end }}
{{- if eq .role "notifications" }}
- name: DUEFLOW_WEBHOOKS
  value: {{ $root.Values.config.webhooks | quote }}
- name: DUEFLOW_WEBHOOK_ALLOW_PRIVATE
  value: {{ $root.Values.config.webhookAllowPrivate | quote }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_WEBHOOK_SECRET" "key" $keys.webhookSecret "optional" true) }}
{{- end }}
{{- with $root.Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The container security context every Dueflow container runs with. */}}
{{- define "dueflow.containerSecurity" -}}
{{ toYaml .Values.defaults.securityContext }}
{{- end }}
