//! Finding the field behind a serde error that serde_yaml located too coarsely.
//!
//! When a field's own parser rejects a value after reading it (a bad
//! duration, status pattern or condition), serde_yaml reports the error at
//! the start of the enclosing mapping, with that mapping's path
//! (`endpoints[2]: invalid duration ...`). Here each field of that mapping is
//! deserialized alone to find the one that fails (and, for a list, the
//! element), so the error can point at the value a person must fix.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::locate::Seg;
use super::model::{
    AlertDecl, AlertingDecl, CertificateDecl, ChannelDecl, Defaults, EndpointDecl,
    EndpointDefaults, HeartbeatDecl,
};

/// Parse a serde_yaml path (`endpoints[2].alert`) into segments. `None` for
/// paths this module does not handle (aliases, unknown, odd keys).
pub(crate) fn parse_path(s: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if name.is_empty() || name.contains(['?', ']']) {
            return None;
        }
        out.push(Seg::Key(name.to_owned()));
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let index: usize = rest.get(1..close)?.parse().ok()?;
            out.push(Seg::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

/// Render segments the way serde_yaml does.
pub(crate) fn display_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The path of the field (or list element) under the mapping at `path` whose
/// value fails to deserialize, if one does.
///
/// When `path` is a list field (`endpoints[0].expected_status`, where
/// serde_yaml reports errors of its elements), the failing element of it.
pub(crate) fn failing_field(text: &str, path: &[Seg]) -> Option<Vec<Seg>> {
    let doc: Value = serde_yaml::from_str(text).ok()?;
    let node = walk(&doc, path)?;
    if node.is_sequence()
        && let Some((Seg::Key(field), parent)) = path.split_last()
    {
        return failing_in(walk(&doc, parent)?.as_mapping()?, parent, Some(field));
    }
    failing_in(node.as_mapping()?, path, None)
}

fn walk<'a>(doc: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut node = doc;
    for seg in path {
        node = match seg {
            Seg::Key(k) => node.as_mapping()?.get(k.as_str())?,
            Seg::Index(i) => node.as_sequence()?.get(*i)?,
        };
    }
    Some(node)
}

fn failing_in(map: &Mapping, path: &[Seg], only: Option<&str>) -> Option<Vec<Seg>> {
    let shape: Vec<Option<&str>> = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    let (field, element) = match shape.as_slice() {
        [Some("defaults")] => find::<Defaults>(map, &[], only),
        [Some("defaults"), Some("endpoint")] => find::<EndpointDefaults>(map, &[], only),
        [Some("endpoints"), None] => find::<EndpointDecl>(map, &[NAME, URL], only),
        [Some("heartbeats"), None] => find::<HeartbeatDecl>(map, &[NAME], only),
        [Some("certificates"), None] => {
            find::<CertificateDecl>(map, &[NAME, ("host", "placeholder")], only)
        }
        [
            Some("endpoints" | "heartbeats" | "certificates"),
            None,
            Some("alert"),
        ] => find::<AlertDecl>(map, &[], only),
        [Some("alerting")] => find::<AlertingDecl>(map, &[], only),
        [Some("alerting"), Some("channels"), None] => {
            find::<ChannelDecl>(map, &[NAME, URL, ("type", "webhook")], only)
        }
        _ => None,
    }?;
    let mut out = path.to_vec();
    out.push(Seg::Key(field));
    out.extend(element.map(Seg::Index));
    Some(out)
}

const NAME: (&str, &str) = ("name", "placeholder");
const URL: (&str, &str) = ("url", "placeholder");

/// Deserialize `T` from each entry of `map` alone (plus placeholder values
/// for the `required` fields): the first entry that fails, and for a list
/// the first element that fails alone.
fn find<T: DeserializeOwned>(
    map: &Mapping,
    required: &[(&str, &str)],
    only: Option<&str>,
) -> Option<(String, Option<usize>)> {
    let fails = |key: &Value, value: Value| {
        let mut probe = Mapping::new();
        for (k, v) in required {
            probe.insert(Value::from(*k), Value::from(*v));
        }
        probe.insert(key.clone(), value);
        serde_yaml::from_value::<T>(Value::Mapping(probe)).is_err()
    };
    for (key, value) in map {
        let Some(name) = key.as_str() else { continue };
        if only.is_some_and(|o| o != name) || !fails(key, value.clone()) {
            continue;
        }
        let element = value.as_sequence().and_then(|items| {
            items
                .iter()
                .position(|item| fails(key, Value::Sequence(vec![item.clone()])))
        });
        return Some((name.to_owned(), element));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::locate::key;

    #[test]
    fn parses_and_displays_paths() {
        let p = parse_path("endpoints[2].conditions[0]").unwrap();
        assert_eq!(
            p,
            vec![
                key("endpoints"),
                Seg::Index(2),
                key("conditions"),
                Seg::Index(0)
            ]
        );
        assert_eq!(display_path(&p), "endpoints[2].conditions[0]");
        assert_eq!(
            parse_path("defaults.endpoint").unwrap(),
            vec![key("defaults"), key("endpoint")]
        );
        for bad in ["", ".", "a[x]", "a[1", "a[1]b", "endpoints[0].?"] {
            assert_eq!(parse_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finds_the_failing_field_and_element() {
        let text = "endpoints:\n  - name: a\n    url: u\n    interval: 5s\n    expected_status: [200, \"2xy\"]\n";
        let path = vec![key("endpoints"), Seg::Index(0)];
        assert_eq!(
            failing_field(text, &path),
            Some(vec![
                key("endpoints"),
                Seg::Index(0),
                key("expected_status"),
                Seg::Index(1)
            ])
        );
        let text = "defaults:\n  endpoint:\n    interval: 5 minutes\n";
        let path = vec![key("defaults"), key("endpoint")];
        assert_eq!(
            failing_field(text, &path),
            Some(vec![key("defaults"), key("endpoint"), key("interval")])
        );
        let path = vec![key("endpoints"), Seg::Index(0), key("expected_status")];
        let text = "endpoints:\n  - name: a\n    url: u\n    expected_status: [\"2xy\"]\n";
        assert_eq!(
            failing_field(text, &path).unwrap().last(),
            Some(&Seg::Index(0))
        );
        assert_eq!(
            failing_field(
                "endpoints: [{name: a, url: b}]",
                &[key("endpoints"), Seg::Index(0)]
            ),
            None
        );
        assert_eq!(failing_field("[", &[]), None);
    }
}
