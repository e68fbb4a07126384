//! maintenant: a monitoring sidecar whose monitors are declared, reconciled and
//! exposed to AI assistants over MCP.
//!
//! Data flows one way (see DESIGN.md):
//! sources -> desired state -> reconciler -> checks -> store -> read model -> MCP/HTTP.

pub mod alerts;
pub mod checks;
pub mod condition;
pub mod config;
pub mod crd;
pub mod desired;
pub mod duration;
pub mod engine;
pub mod heartbeat;
pub mod http;
pub mod kubeclient;
pub mod logging;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod observed;
pub mod pause;
pub mod ping;
pub mod pingkey;
pub mod ratelimit;
pub mod readmodel;
pub mod reconcile;
pub mod repeated;
pub mod resources;
pub mod runtime;
pub mod serve;
pub mod settings;
pub mod sources;
pub mod status;
pub mod store;
pub mod supervise;
pub mod updates;
pub mod views;
