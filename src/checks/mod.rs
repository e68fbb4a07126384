//! Check tasks: run a monitor's probe on its interval and turn outcomes into
//! observed state through the failure/recovery thresholds.

pub mod probe;
