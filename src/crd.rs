//! The `Monitor` custom resource (`maintenant.dev/v1alpha1`, namespaced): one
//! monitor declared as a Kubernetes object, so GitOps tools (Argo CD, Flux)
//! can apply monitor definitions next to the workloads they watch.
//!
//! The spec embeds the monitors file's own types ([`EndpointDecl`]) and is
//! resolved by the file's own validator ([`config::resolve_endpoint`]), so a
//! resource and a file entry accept and reject exactly the same things.
//! maintenant writes what it observed into the status subresource; the
//! printer columns make `kubectl get monitors` show it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config;
use crate::config::model::EndpointDecl;
use crate::monitor::MonitorSpec;

pub const GROUP: &str = "maintenant.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Monitor";
pub const PLURAL: &str = "monitors";

/// Exactly one monitor. Each field is one kind of monitor, written exactly
/// as an item of the matching list in the monitors file; set exactly one.
/// `name` may be left out: it then defaults to `<namespace>.<metadata.name>`,
/// and the monitor's id is `endpoint/<name>`.
#[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "maintenant.dev",
    version = "v1alpha1",
    kind = "Monitor",
    namespaced,
    status = "MonitorStatus",
    shortname = "mon",
    category = "maintenant",
    doc = "A monitor declared as a Kubernetes object; maintenant writes what it observes into its status.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.type","description":"kind of monitor and protocol"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".status.target","description":"what is checked"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state","description":"up, down, pending or invalid"}"#,
    printcolumn = r#"{"name":"Last Check","type":"date","jsonPath":".status.lastCheck","description":"when maintenant last checked"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(deny_unknown_fields)]
pub struct MonitorResourceSpec {
    /// An HTTP(S) or TCP endpoint, as in the monitors file's `endpoints` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointDecl>,
    // Heartbeats and certificates join here as `heartbeat: Option<HeartbeatDecl>`
    // and `certificate: Option<CertificateDecl>`, with one arm each in `resolve`.
}

/// What maintenant observed, written by maintenant (never by a person).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    /// The monitor's id in maintenant's tools (`endpoint/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Kind and protocol: `endpoint/http`, `endpoint/https`, `endpoint/tcp`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub monitor_type: Option<String>,
    /// The URL or host:port checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `up`, `down`, `pending` (not decided yet) or `invalid` (spec rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the last check finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
    /// The last check's error, or why the spec was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True while the spec is accepted and its check runs.
    #[serde(default)]
    pub conditions: Vec<MonitorCondition>,
}

/// A status condition, shaped like Kubernetes' `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason: `Monitoring`, `InvalidSpec`, `Conflict`, `Starting`.
    pub reason: String,
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CustomResourceDefinition, as `maintenant crd` prints it and the Helm
/// chart ships it (`charts/maintenant/crds/`).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = Monitor::crd();
    // `name` is optional in a resource (it defaults from the object), while
    // the shared file model requires it.
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            && let Some(endpoint) = schema
                .properties
                .as_mut()
                .and_then(|p| p.get_mut("spec"))
                .and_then(|s| s.properties.as_mut())
                .and_then(|p| p.get_mut("endpoint"))
        {
            if let Some(req) = endpoint.required.as_mut() {
                req.retain(|r| r != "name");
            }
            // `200` or `"2xx"`: schemars says anyOf(integer, anything), which
            // is not a structural schema; Kubernetes spells it int-or-string.
            if let Some(items) = endpoint
                .properties
                .as_mut()
                .and_then(|p| p.get_mut("expected_status"))
                .and_then(|s| s.items.as_mut())
            {
                let description = match items {
                    JSONSchemaPropsOrArray::Schema(s) => s.description.clone(),
                    JSONSchemaPropsOrArray::Schemas(_) => None,
                };
                *items = JSONSchemaPropsOrArray::Schema(Box::new(JSONSchemaProps {
                    description,
                    x_kubernetes_int_or_string: Some(true),
                    ..Default::default()
                }));
            }
        }
    }
    crd
}

/// The CRD as YAML, with a header saying where it comes from.
pub fn crd_yaml() -> String {
    format!(
        "# Generated by `maintenant crd`; do not edit (a test checks that charts/maintenant/crds/ matches).\n{}",
        serde_yaml::to_string(&crd()).expect("the CRD serializes")
    )
}

/// Why a resource's spec was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

/// Turn a resource's raw `spec` (as the API server stored it) into a
/// monitor spec. Parsing the raw JSON here, rather than in the watcher,
/// means one bad object is reported on that object and never stops the
/// watch of all the others.
pub fn resolve(
    namespace: &str,
    name: &str,
    spec: Option<&serde_json::Value>,
) -> Result<MonitorSpec, InvalidSpec> {
    let mut spec = spec
        .cloned()
        .ok_or_else(|| InvalidSpec("the resource has no spec".into()))?;
    let default_name = format!("{namespace}.{name}");
    let kinds: Vec<String> = spec
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if kinds.len() != 1 {
        return Err(InvalidSpec(format!(
            "spec must set exactly one of `endpoint` (found {})",
            if kinds.is_empty() {
                "none".to_owned()
            } else {
                kinds.join(", ")
            }
        )));
    }
    if let Some(m) = spec
        .as_object_mut()
        .and_then(|o| o.values_mut().next())
        .and_then(|v| v.as_object_mut())
        && !m.contains_key("name")
    {
        m.insert("name".into(), default_name.into());
    }
    let parsed: MonitorResourceSpec =
        serde_json::from_value(spec).map_err(|e| InvalidSpec(format!("spec: {e}")))?;
    if let Some(decl) = parsed.endpoint {
        return config::resolve_endpoint(&decl)
            .map(MonitorSpec::Endpoint)
            .map_err(|problems| InvalidSpec(format!("spec.endpoint: {}", problems.join("; "))));
    }
    Err(InvalidSpec(
        "spec must set exactly one of `endpoint`".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_valid_endpoint_resolves_with_the_file_defaults() {
        let spec = resolve(
            "shop",
            "api",
            Some(&json!({"endpoint": {"url": "http://127.0.0.1:9/health", "interval": "5s"}})),
        )
        .unwrap();
        let MonitorSpec::Endpoint(e) = spec else {
            panic!("an endpoint resource resolves to an endpoint")
        };
        assert_eq!(e.name, "shop.api", "name defaults to namespace.name");
        assert_eq!(e.interval.std(), std::time::Duration::from_secs(5));
        assert_eq!(
            e.timeout.std(),
            std::time::Duration::from_secs(5),
            "timeout cut to the interval like in a file"
        );
        assert_eq!(e.failure_threshold, 3);
    }

    #[test]
    fn invalid_specs_say_why() {
        let err = |v| resolve("ns", "x", Some(&v)).unwrap_err().0;
        assert!(err(json!({})).contains("exactly one"));
        assert!(
            err(json!({"endpoint": {"url": "ftp://x"}})).contains("url"),
            "{}",
            err(json!({"endpoint": {"url": "ftp://x"}}))
        );
        let unknown = err(json!({"endpoint": {"url": "http://x", "intervall": "5s"}}));
        assert!(unknown.contains("intervall"), "{unknown}");
        let threshold = err(json!({"endpoint": {"url": "http://x", "failure_threshold": 0}}));
        assert!(
            threshold.contains("failure_threshold must be at least 1"),
            "{threshold}"
        );
        // `${VAR}` stays literal: a resource cannot read maintenant's environment.
        let literal = resolve(
            "ns",
            "x",
            Some(&json!({"endpoint": {"url": "http://127.0.0.1/${HOME}"}})),
        )
        .unwrap();
        let MonitorSpec::Endpoint(e) = literal else {
            panic!("an endpoint resource resolves to an endpoint")
        };
        assert_eq!(e.target.display(), "http://127.0.0.1/${HOME}");
        let timeout =
            err(json!({"endpoint": {"url": "http://x", "interval": "5s", "timeout": "10s"}}));
        assert!(timeout.contains("timeout"), "{timeout}");
        assert!(
            err(json!({"endpoint": {"url": "http://x"}, "heartbeat": {}})).contains("exactly one")
        );
    }

    #[test]
    fn the_crd_has_status_printer_columns_and_an_optional_name() {
        let crd = crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.plural, PLURAL);
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, VERSION);
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(cols, ["Type", "Target", "Status", "Last Check", "Age"]);
        let yaml = crd_yaml();
        assert!(yaml.contains("kind: CustomResourceDefinition"));
        let schema = serde_json::to_value(&v.schema).unwrap();
        let endpoint = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["endpoint"];
        assert_eq!(endpoint["required"], json!(["url"]));
    }
}
