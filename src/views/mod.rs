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
}
