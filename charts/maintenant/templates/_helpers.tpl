{{- define "maintenant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "maintenant.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "maintenant.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "maintenant.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "maintenant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maintenant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "maintenant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "maintenant.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "maintenant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "maintenant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "maintenant.configMapName" -}}
{{- default (printf "%s-monitors" (include "maintenant.fullname" .)) .Values.existingConfigMap -}}
{{- end -}}

{{- define "maintenant.baseUrl" -}}
{{- if .Values.baseUrl -}}
{{- .Values.baseUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" (ne .Values.ingress.tlsSecretName "")) .Values.ingress.host -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "maintenant.fullname" .) .Release.Namespace .Values.service.port -}}
{{- end -}}
{{- end -}}

{{/* The rules maintenant needs, and nothing more: read pods (and, unless
     kubernetes.podLogs is false, their logs); get a pod's owning workload
     (its maintenant.* annotations); read Monitor resources; write only their
     status. No events: nothing in maintenant reads them. */}}
{{- define "maintenant.rules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- if .Values.kubernetes.podLogs }}
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get"]
- apiGroups: ["maintenant.dev"]
  resources: ["monitors"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["maintenant.dev"]
  resources: ["monitors/status"]
  verbs: ["get", "patch"]
{{- end -}}

{{/* "true" when /mcp verifies tokens (allowedEmail, and issuer: the schema
     refuses one without the other). */}}
{{- define "maintenant.mcpAuthenticated" -}}
{{- if and .Values.mcp.allowedEmail .Values.mcp.issuer }}true{{ end -}}
{{- end -}}

{{/* "true" when /mcp is served without authentication (opted in). */}}
{{- define "maintenant.mcpOpen" -}}
{{- if and .Values.mcp.enabled .Values.mcp.unauthenticated.enabled }}true{{ end -}}
{{- end -}}

{{/* Refuse values that would serve MCP to more than the user chose. The
     default install serves no MCP; turning it on takes authentication or an
     explicit, fenced opt-in (docs/security.md). */}}
{{- define "maintenant.checkMcp" -}}
{{- $m := .Values.mcp -}}
{{- /* The schema refuses this too; this also holds with --skip-schema-validation. */ -}}
{{- if and $m.allowedEmail (not $m.issuer) -}}
{{- fail "mcp.allowedEmail needs mcp.issuer: tokens are verified against that issuer's keys, and maintenant refuses to start without it." -}}
{{- end -}}
{{- if and $m.enabled (not (include "maintenant.mcpAuthenticated" .)) (not $m.unauthenticated.enabled) -}}
{{- fail "mcp.enabled=true without authentication would let every pod that reaches the Service call every tool (pod logs, pause, maintenance, incidents). Set mcp.allowedEmail and mcp.issuer, or opt in with mcp.unauthenticated.enabled=true and mcp.unauthenticated.allowFrom (a NetworkPolicy admits only those peers)." -}}
{{- end -}}
{{- if and $m.unauthenticated.enabled (not $m.enabled) -}}
{{- fail "mcp.unauthenticated.enabled=true needs mcp.enabled=true (it only says how /mcp is served)." -}}
{{- end -}}
{{- if and $m.unauthenticated.enabled $m.allowedEmail -}}
{{- fail "mcp.unauthenticated.enabled=true and mcp.allowedEmail are both set: choose authentication (allowedEmail + issuer) or the unauthenticated opt-in, not both." -}}
{{- end -}}
{{- if and $m.unauthenticated.enabled .Values.ingress.enabled -}}
{{- fail "ingress.enabled=true with mcp.unauthenticated.enabled=true would publish unauthenticated MCP through the Ingress: configure mcp.allowedEmail and mcp.issuer instead." -}}
{{- end -}}
{{- end -}}
