//! Image updates: for each running container, is there a newer image?
//!
//! - [`reference`]: image references (`registry/repo:tag@digest`), Docker
//!   Hub's defaults.
//! - [`registry`]: an OCI distribution client (HEAD manifests with the
//!   right Accept headers, Bearer token and basic auth, tags listing).
//! - [`version`]: semver-like tags, what counts as newer, include/exclude.
//! - [`scan`]: the scanner (containers from the runtime, digests from
//!   bollard, results in sled, schedule with backoff) and `get_updates`.

pub mod reference;
pub mod registry;
pub mod scan;
pub mod version;
