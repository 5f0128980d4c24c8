{{/* Names: every object is named after the release ("embedtoken" in README). */}}
{{- define "embedtoken.name" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "embedtoken.labels" -}}
app.kubernetes.io/part-of: embedtoken
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "embedtoken.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The catalog files, name -> HCL: values or the chart's hcl/. */}}
{{- define "embedtoken.catalogFiles" -}}
{{- if .Values.catalog.files -}}
{{- toYaml .Values.catalog.files -}}
{{- else -}}
{{- $out := dict -}}
{{- range $path, $_ := .Files.Glob "hcl/*.hcl" -}}
{{- $_ := set $out (base $path) ($.Files.Get $path) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{- define "embedtoken.sidecarFiles" -}}
{{- if .Values.catalog.sidecars -}}
{{- toYaml .Values.catalog.sidecars -}}
{{- else -}}
{{- $out := dict -}}
{{- range $path, $_ := .Files.Glob "hcl/sidecars/*.hcl" -}}
{{- $_ := set $out (base $path) ($.Files.Get $path) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{/* The pod-level and container-level restricted security contexts. */}}
{{- define "embedtoken.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "embedtoken.containerSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
