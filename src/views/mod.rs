//! Read models beside `readmodel.rs`: certificate rows and alert rows, for
//! `list_certificates`, `list_alerts` and `acknowledge_alert`. Pure reads
//! (acknowledging is the alert engine's function, called from here).

pub mod alerts;
pub mod certificates;
