{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "ioc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "ioc.fullname" -}}
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

{{- define "ioc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ioc.labels" -}}
helm.sh/chart: {{ include "ioc.chart" . }}
{{ include "ioc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ioc
{{- end }}

{{- define "ioc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ioc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: pass (dict "root" $ "component" "worker"). */}}
{{- define "ioc.componentLabels" -}}
{{ include "ioc.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ioc.componentSelectorLabels" -}}
{{ include "ioc.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Marks the Services that serve only /metrics (what the ServiceMonitors select). */}}
{{- define "ioc.metricsServiceLabel" -}}
ioc.metrics/service: "true"
{{- end }}

{{- define "ioc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ioc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ioc.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- /* toString: a tag given as a number (--set image.tag=1234) is valid in the schema */}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{- define "ioc.configMapName" -}}
{{- printf "%s-config" (include "ioc.fullname" .) }}
{{- end }}

{{/* The non-secret IOC_* settings, as ConfigMap data (key: "value" lines). */}}
{{- define "ioc.settings" -}}
{{- $c := .Values.config -}}
IOC_ENV: {{ $c.env | quote }}
IOC_KAFKA_BOOTSTRAP: {{ required "config.kafkaBootstrap is required (the Kafka bootstrap servers)" $c.kafkaBootstrap | quote }}
IOC_TOPIC_PREFIX: {{ $c.topicPrefix | quote }}
IOC_TOPIC_PARTITIONS: {{ $c.topicPartitions | quote }}
IOC_TOPIC_REPLICATION: {{ $c.topicReplication | quote }}
IOC_CONSUMER_GROUP: {{ $c.consumerGroup | quote }}
IOC_HOME_PROVINCE: {{ $c.homeProvince | quote }}
IOC_ANPR_LOOK_CLOSER: {{ $c.anprLookCloser | quote }}
IOC_READ_RETENTION_DAYS: {{ $c.readRetentionDays | quote }}
IOC_ALERT_RETENTION_DAYS: {{ $c.alertRetentionDays | quote }}
IOC_DATABASE_POOL_SIZE: {{ $c.databasePoolSize | quote }}
IOC_API_HOST: "0.0.0.0"
IOC_API_PORT: {{ .Values.api.port | quote }}
# /metrics on a port of its own: the API port is what the Ingress routes to
IOC_API_METRICS_PORT: {{ .Values.api.metricsPort | quote }}
IOC_WORKER_WEB_HOST: "0.0.0.0"
IOC_WORKER_WEB_PORT: {{ .Values.worker.webPort | quote }}
IOC_WORKER_METRICS_PORT: {{ .Values.worker.metricsPort | quote }}
IOC_WORKER_DATA_DIR: "/tmp/ioc-faust"
{{- with include "ioc.trustedProxies" . }}
{{- if hasKey $c.extra "IOC_API_TRUSTED_PROXIES" }}
{{- fail "IOC_API_TRUSTED_PROXIES is set twice: keep api.trustedProxies and drop it from config.extra" }}
{{- end }}
# the reverse proxies whose X-Forwarded-For names the client (sign-in throttling per client)
IOC_API_TRUSTED_PROXIES: {{ . | quote }}
{{- end }}
{{- range $key, $value := $c.extra }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* api.trustedProxies as IOC_API_TRUSTED_PROXIES wants it: comma-separated (a list is joined). */}}
{{- define "ioc.trustedProxies" -}}
{{- $proxies := .Values.api.trustedProxies | default "" -}}
{{- if kindIs "slice" $proxies }}{{ join "," $proxies }}{{ else }}{{ $proxies | toString | trim }}{{ end }}
{{- end }}

{{/* Whether the API is told its reverse proxies: api.trustedProxies, or IOC_API_TRUSTED_PROXIES in
config.extra or api.extraEnv (where earlier versions of this chart said to put it). "true" or "". */}}
{{- define "ioc.trustedProxiesSet" -}}
{{- $set := or (include "ioc.trustedProxies" .) (get .Values.config.extra "IOC_API_TRUSTED_PROXIES") -}}
{{- range .Values.api.extraEnv }}
{{- if and (eq (.name | toString) "IOC_API_TRUSTED_PROXIES") (or .value .valueFrom) }}
{{- $set = true }}
{{- end }}
{{- end }}
{{- if $set }}true{{ end }}
{{- end }}

{{/* IOC_DATABASE_URL and IOC_AUTH_SECRET from existing Secrets (container env entries). */}}
{{- define "ioc.secretEnv" -}}
{{- $default := required "secrets.existingSecret is required: the name of a Secret you created (see values.yaml)" .Values.secrets.existingSecret -}}
- name: IOC_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ default $default .Values.secrets.databaseUrl.secretName | quote }}
      key: {{ .Values.secrets.databaseUrl.key | quote }}
- name: IOC_AUTH_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default $default .Values.secrets.authSecret.secretName | quote }}
      key: {{ .Values.secrets.authSecret.key | quote }}
{{- end }}

{{/* Pod-level settings shared by every workload: pass (dict "root" $ "values" .Values.worker). */}}
{{- define "ioc.podSpecCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Spread replicas over nodes unless the user gave their own constraints. */}}
{{- define "ioc.topologySpread" -}}
topologySpreadConstraints:
{{- if .values.topologySpreadConstraints }}
  {{- toYaml .values.topologySpreadConstraints | nindent 2 }}
{{- else }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ioc.componentSelectorLabels" (dict "root" .root "component" .component) | nindent 8 }}
{{- end }}
{{- end }}

{{/* The container of a one-shot `ioc` command (the migrate and cameras Jobs, the retention
CronJob): pass (dict "root" $ "name" "retention" "args" (list "migrate" "--retention") "values"
.Values.retention) and optionally "mounts" (more volumeMounts) and "inlineSettings" true: a
pre-install hook runs before the ConfigMap exists, so it carries the settings itself. */}}
{{- define "ioc.commandContainer" -}}
- name: {{ .name }}
  image: {{ include "ioc.image" .root | quote }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args: {{ toJson .args }}
  {{- if .inlineSettings }}
  env:
    {{- range $key, $value := (include "ioc.settings" .root | fromYaml) }}
    - name: {{ $key }}
      value: {{ $value | quote }}
    {{- end }}
  {{- else }}
  envFrom:
    - configMapRef:
        name: {{ include "ioc.configMapName" .root }}
  env:
  {{- end }}
    {{- include "ioc.secretEnv" .root | nindent 4 }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- with .mounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{- define "ioc.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{/* A preStop pause before SIGTERM (pass .Values.api or .Values.worker); nothing when 0. */}}
{{- define "ioc.preStop" -}}
{{- if gt (int .preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", {{ .preStopSleepSeconds | int | toString | quote }}]
{{- end }}
{{- end }}

{{/* The pause must leave time for the graceful stop: pass (dict "name" "api" "values" .Values.api). */}}
{{- define "ioc.checkPreStop" -}}
{{- if ge (int .values.preStopSleepSeconds) (int .values.terminationGracePeriodSeconds) }}
{{- fail (printf "%s.preStopSleepSeconds (%d) must be shorter than %s.terminationGracePeriodSeconds (%d): the pause counts against the grace period" .name (int .values.preStopSleepSeconds) .name (int .values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}
