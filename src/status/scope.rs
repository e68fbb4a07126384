//! Which monitors an incident or a window is about, and whether a running
//! window silences a monitor's alerts.

use std::sync::Arc;

use time::OffsetDateTime;

use super::store::{Maintenance, StatusStore, WindowState};
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

/// Whether the window covers this monitor (named, or in one of its groups).
pub fn covers(w: &Maintenance, key: &MonitorKey, group: Option<&str>) -> bool {
    w.monitors.iter().any(|m| *m == key.id())
        || group.is_some_and(|g| w.groups.iter().any(|x| x == g))
}

/// The id of a window running at `at` that covers the monitor, if any.
pub fn silencing_window(
    windows: &[Maintenance],
    key: &MonitorKey,
    group: Option<&str>,
    at: OffsetDateTime,
) -> Option<String> {
    windows
        .iter()
        .find(|w| w.state_at(at) == WindowState::Ongoing && covers(w, key, group))
        .map(|w| w.id.clone())
}

/// The alert engine's hook: asks the windows kept in memory (see
/// [`StatusStore`]), which a new window joins as soon as it is written, so
/// it applies at once without a database read per signal.
pub fn silence_predicate(store: StatusStore) -> crate::alerts::SilencePredicate {
    Arc::new(
        move |key: &MonitorKey, group: Option<&str>, at: OffsetDateTime| {
            store.with_windows(|w| silencing_window(w, key, group, at))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: i64, end: i64) -> Maintenance {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20000);
        Maintenance {
            id: "maintenance/1".into(),
            title: "t".into(),
            message: None,
            start_time: t0 + time::Duration::seconds(start),
            end_time: t0 + time::Duration::seconds(end),
            monitors: vec!["endpoint/api".into()],
            groups: vec!["db".into()],
            created_at: t0,
            created_by: "mcp".into(),
        }
    }

    #[test]
    fn a_window_silences_its_monitors_and_groups_only_while_it_runs() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20000);
        let w = vec![window(10, 20)];
        let api = MonitorKey {
            kind: MonitorKind::Endpoint,
            name: "api".into(),
        };
        let other = MonitorKey {
            kind: MonitorKind::Heartbeat,
            name: "api".into(),
        };
        let s = |k: &MonitorKey, g: Option<&str>, t: i64| {
            silencing_window(&w, k, g, t0 + time::Duration::seconds(t))
        };
        assert_eq!(s(&api, None, 10).as_deref(), Some("maintenance/1"));
        assert_eq!(s(&api, None, 9), None, "not started");
        assert_eq!(s(&api, None, 20), None, "ended (end exclusive)");
        assert_eq!(s(&other, None, 15), None, "another kind of the same name");
        assert_eq!(s(&other, Some("db"), 15).as_deref(), Some("maintenance/1"));
        assert_eq!(s(&other, Some("web"), 15), None);
    }
}
