//! The public status side: incidents (with their timeline) and maintenance
//! windows, kept in sled, shown on `/status`, `/status.json` and
//! `/status/feed.atom`, and written by the MCP tools `create_incident`,
//! `update_incident` and `create_maintenance`.
//!
//! - [`store`]: the sled trees and the records.
//! - [`scope`]: which monitors a name, id or group means.
//! - [`silence`]: whether a running window silences a monitor's alerts (the
//!   alert engine's hook).
//! - [`tools`]: the write operations behind the MCP tools (input checks).
//! - [`page`]: the status data, its HTML page and its Atom feed.
//! - [`limits`]: how long and how many (docs/limits.md).

pub mod limits;
pub mod page;
pub mod scope;
pub mod silence;
pub mod store;
pub mod tools;

pub use store::{Incident, IncidentStatus, IncidentUpdate, Maintenance, StatusStore};
