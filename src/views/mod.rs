//! Read models beside `readmodel.rs`: certificate rows and alert rows, for
//! `list_certificates`, `list_alerts` and `acknowledge_alert`. Pure reads
//! (acknowledging is the alert engine's function, called from here).

pub mod alerts;
pub mod certificates;

#[cfg(test)]
mod schema_tests {
    /// The answer schemas of the alert and certificate tools are objects
    /// that name the fields assistants read (a flattened alert included).
    #[test]
    fn output_schemas_name_the_fields() {
        let alerts = serde_json::to_value(schemars::schema_for!(
            crate::readmodel::Page<crate::views::alerts::AlertRow>
        ))
        .unwrap();
        let text = alerts.to_string();
        for field in [
            "acknowledged_by",
            "deliveries",
            "severity",
            "fired_at",
            "entity",
        ] {
            assert!(text.contains(field), "{field} missing in {alerts:#}");
        }
        assert_eq!(alerts["type"], "object");
        let certs = serde_json::to_value(schemars::schema_for!(
            crate::readmodel::Page<crate::views::certificates::CertificateRow>
        ))
        .unwrap();
        assert_eq!(certs["type"], "object");
        assert!(certs.to_string().contains("hostname_match"));
    }

    /// `desired.spec` leaves out the optional parts that are not set, so
    /// the output schema (rmcp's, from the serialized form) must not require
    /// them: a client that validates `structuredContent` would reject the row.
    #[test]
    fn an_endpoint_spec_requires_only_what_it_always_has() {
        let schema = rmcp::handler::server::common::schema_for_output::<
            crate::readmodel::Page<crate::readmodel::EndpointRow>,
        >();
        let defs = &schema["$defs"];
        let spec = &defs["EndpointSpec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap_or_else(|| panic!("no required list in {spec:#}"))
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for always in ["name", "target", "interval", "expected_status"] {
            assert!(
                required.contains(&always),
                "{always} not required: {required:?}"
            );
        }
        for optional in ["group", "headers", "body", "conditions", "alert"] {
            assert!(
                !required.contains(&optional),
                "{optional} required: {required:?}"
            );
            assert!(
                spec["properties"][optional].is_object(),
                "{optional} not described"
            );
        }
    }
}
