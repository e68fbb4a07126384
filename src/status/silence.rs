//! Whether a running maintenance window silences a monitor's alerts: the
//! alert engine's hook. It needs only the windows and the monitor's key and
//! group, never the read model, so the wiring can use it without importing
//! the read side.

use std::sync::Arc;

use time::OffsetDateTime;

use super::store::{Maintenance, StatusStore, WindowState};
use crate::monitor::MonitorKey;

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
    use crate::monitor::MonitorKind;

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
