//! Container runtimes: what runs (containers, pods), their logs and state
//! transitions.

pub mod kubernetes;
