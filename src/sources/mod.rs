//! Sources produce declared monitors with their origin. They never start
//! checks: each sends its whole declared set to the desired state.

pub mod docker;
pub mod file;
pub mod kubernetes;
pub mod kubernetes_status;
pub mod labels;
