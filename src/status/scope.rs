//! Which monitors an incident or a window is about (names, ids, groups
//! resolved against the desired state, with "did you mean").

use crate::desired::DesiredState;
use crate::monitor::{MonitorKey, MonitorKind};
use crate::readmodel::{self, ReadError};

const KINDS: [MonitorKind; 3] = [
    MonitorKind::Endpoint,
    MonitorKind::Heartbeat,
    MonitorKind::Certificate,
];

/// A monitor named by id (`endpoint/api`) or plain name (`api`, when only
/// one kind declares it). A typo gets "did you mean".
///
/// `container/NAME` is taken as given: containers are not declared, and a
/// window is often planned for a container that a deploy will recreate.
pub fn resolve_any(state: &DesiredState, query: &str) -> Result<MonitorKey, ReadError> {
    let q = query.trim();
    if let Some(name) = q.strip_prefix("container/") {
        let name = name.trim();
        // A pod is `namespace/name`: 63 + 1 + 253 characters at most.
        if name.is_empty() || name.len() > 320 {
            return Err(ReadError::BadArgument(format!(
                "'{}' is not a container id: write container/NAME as list_containers names it",
                q.chars().take(80).collect::<String>()
            )));
        }
        return Ok(MonitorKey::container(name));
    }
    readmodel::suggest::check_query("monitor", q, readmodel::MAX_MONITOR_ID_CHARS)?;
    if let Some((kind, _)) = q.split_once('/')
        && let Some(k) = KINDS.iter().find(|k| k.as_str() == kind)
    {
        return readmodel::resolve(state, *k, q);
    }
    let found: Vec<MonitorKey> = KINDS
        .iter()
        .filter_map(|k| readmodel::resolve(state, *k, q).ok())
        .filter(|key| key.name.eq_ignore_ascii_case(q))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            // The best suggestion among every kind's.
            let hints: Vec<String> = KINDS
                .iter()
                .filter_map(|k| match readmodel::resolve(state, *k, q) {
                    Err(ReadError::NotFound(m)) if m.contains("did you mean") => m
                        .split_once("did you mean ")
                        .map(|(_, h)| format!("{} {}", k.as_str(), h.trim_end_matches('?'))),
                    _ => None,
                })
                .collect();
            let hint = if hints.is_empty() {
                "name monitors as list_endpoints, list_heartbeats and list_certificates show them \
                 (an id like endpoint/api, or a plain name)"
                    .to_owned()
            } else {
                format!("did you mean {}?", hints.join(", or "))
            };
            Err(ReadError::NotFound(format!(
                "no monitor named '{q}'; {hint}"
            )))
        }
        many => Err(ReadError::BadArgument(format!(
            "'{q}' names several monitors ({}); pass the id",
            many.iter()
                .map(MonitorKey::id)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Resolve a list, deduplicated, in the order given.
pub fn resolve_all(state: &DesiredState, queries: &[String]) -> Result<Vec<String>, ReadError> {
    let mut out: Vec<String> = Vec::new();
    for q in queries {
        let id = resolve_any(state, q)?.id();
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}
