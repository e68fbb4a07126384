//! The `Monitor` custom resource (`maintenant.dev/v1alpha1`, namespaced): one
//! monitor declared as a Kubernetes object, so GitOps tools (Argo CD, Flux)
//! can apply monitor definitions next to the workloads they watch.
//!
//! The spec embeds the monitors file's own types ([`EndpointDecl`],
//! [`HeartbeatDecl`], [`CertificateDecl`]) and is resolved by the file's own
//! validator ([`config::resolve_endpoint`], [`config::resolve_heartbeat`],
//! [`config::resolve_certificate`]), so a resource and a file entry accept
//! and reject exactly the same things.
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
use crate::config::model::{CertificateDecl, EndpointDecl, HeartbeatDecl};
use crate::monitor::MonitorSpec;

pub const GROUP: &str = "maintenant.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Monitor";
pub const PLURAL: &str = "monitors";

/// Exactly one monitor. Each field is one kind of monitor, written exactly
/// as an item of the matching list in the monitors file; set exactly one.
/// `name` may be left out: it then defaults to `<namespace>.<metadata.name>`,
/// and the monitor's id is `<kind>/<name>` (`endpoint/shop.api`).
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
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.state","description":"up, down, pending, invalid, conflict or refused"}"#,
    printcolumn = r#"{"name":"Last Check","type":"date","jsonPath":".status.lastCheck","description":"when maintenant last checked"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(deny_unknown_fields)]
pub struct MonitorResourceSpec {
    /// An HTTP(S) or TCP endpoint, as in the monitors file's `endpoints` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointDecl>,
    /// A heartbeat (a job that pings maintenant), as in the monitors file's `heartbeats` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatDecl>,
    /// A TLS certificate, as in the monitors file's `certificates` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateDecl>,
}

/// The kinds a resource's spec may hold (one of them).
pub const SPEC_KINDS: [&str; 3] = ["endpoint", "heartbeat", "certificate"];

/// What maintenant observed, written by maintenant (never by a person).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    /// The monitor's id in maintenant's tools (`endpoint/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Kind and protocol: `endpoint/http`, `endpoint/https`, `endpoint/tcp`, `heartbeat`, `certificate`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub monitor_type: Option<String>,
    /// The URL or host:port checked (a heartbeat: its ping path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `up`, `down`, `pending` (not decided yet), `invalid` (spec rejected),
    /// `conflict` or `refused` (the target policy refused the address); a
    /// heartbeat: `new`, `up`, `started`, `late`, `down`, `paused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the last check finished (a heartbeat: the last ping) (RFC 3339).
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
        let Some(kinds) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|schema| schema.properties.as_mut())
            .and_then(|p| p.get_mut("spec"))
            .and_then(|s| s.properties.as_mut())
        else {
            continue;
        };
        for kind in SPEC_KINDS {
            if let Some(k) = kinds.get_mut(kind)
                && let Some(req) = k.required.as_mut()
            {
                req.retain(|r| r != "name");
                if req.is_empty() {
                    k.required = None;
                }
            }
        }
        if let Some(endpoint) = kinds.get_mut("endpoint") {
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
            "spec must set exactly one of `endpoint`, `heartbeat`, `certificate` (found {})",
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
    let why = |kind: &str, problems: Vec<String>| {
        InvalidSpec(format!("spec.{kind}: {}", problems.join("; ")))
    };
    if let Some(decl) = parsed.endpoint {
        return config::resolve_endpoint(&decl)
            .map(MonitorSpec::Endpoint)
            .map_err(|p| why("endpoint", p));
    }
    if let Some(decl) = parsed.heartbeat {
        return config::resolve_heartbeat(&decl)
            .map(MonitorSpec::Heartbeat)
            .map_err(|p| why("heartbeat", p));
    }
    if let Some(decl) = parsed.certificate {
        return config::resolve_certificate(&decl)
            .map(MonitorSpec::Certificate)
            .map_err(|p| why("certificate", p));
    }
    Err(InvalidSpec(
        "spec must set exactly one of `endpoint`, `heartbeat`, `certificate`".into(),
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
    fn heartbeats_and_certificates_resolve_with_the_file_rules() {
        let hb = resolve(
            "ops",
            "backup",
            Some(&json!({"heartbeat": {"schedule": "0 3 * * *", "timezone": "Europe/Paris"}})),
        )
        .unwrap();
        let MonitorSpec::Heartbeat(h) = hb else {
            panic!("a heartbeat resource resolves to a heartbeat")
        };
        assert_eq!(h.name, "ops.backup");
        assert_eq!(h.grace.std().as_secs(), 3600, "the file's default grace");
        let cert = resolve(
            "shop",
            "site",
            Some(&json!({"certificate": {"host": "shop.example.com", "name": "site"}})),
        )
        .unwrap();
        let MonitorSpec::Certificate(c) = cert else {
            panic!("a certificate resource resolves to a certificate")
        };
        assert_eq!((c.name.as_str(), c.port), ("site", 443));
        assert_eq!(c.interval.std().as_secs(), 12 * 3600);
        assert_eq!(c.warn_days, [30, 14, 7, 3, 1]);

        let err = |v| resolve("ns", "x", Some(&v)).unwrap_err().0;
        let both = err(json!({"heartbeat": {"period": "1h", "schedule": "0 3 * * *"}}));
        assert!(
            both.starts_with("spec.heartbeat: ") && both.contains("not both"),
            "{both}"
        );
        let cron = err(json!({"heartbeat": {"schedule": "61 * * * *"}}));
        assert!(cron.contains("schedule"), "{cron}");
        let tz = err(json!({"heartbeat": {"schedule": "0 3 * * *", "timezone": "Mars/Olympus"}}));
        assert!(tz.contains("Mars/Olympus"), "{tz}");
        let port = err(json!({"certificate": {"host": "x.example", "port": 0}}));
        assert!(
            port.starts_with("spec.certificate: ") && port.contains("port"),
            "{port}"
        );
        let days = err(json!({"certificate": {"host": "x.example", "warn_days": [0]}}));
        assert!(days.contains("warn_days"), "{days}");
        let unknown = err(json!({"certificate": {"hostname": "x.example"}}));
        assert!(unknown.contains("hostname"), "{unknown}");
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
        let kinds = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(kinds["endpoint"]["required"], json!(["url"]));
        assert_eq!(kinds["certificate"]["required"], json!(["host"]));
        assert!(
            kinds["heartbeat"]["required"].is_null(),
            "{}",
            kinds["heartbeat"]
        );
    }
}
