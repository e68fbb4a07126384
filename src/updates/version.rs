//! Tags that look like versions (`1.27.3`, `v2.1`, `1.27.3-alpine`): what
//! counts as newer than the running tag, and which tags to consider.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How big a step a newer tag is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Patch,
    Minor,
    Major,
}

/// `v?MAJOR[.MINOR[.PATCH]][-suffix]`. Tags with a different suffix (or
/// precision) than the running one are another flavour and never compared
/// (`1.27-alpine` is not an update of `1.26`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    pub parts: Vec<u64>,
    pub suffix: String,
    pub v_prefix: bool,
}

impl TagVersion {
    pub fn parse(tag: &str) -> Option<TagVersion> {
        let (v_prefix, t) = match tag.strip_prefix('v') {
            Some(t) => (true, t),
            None => (false, tag),
        };
        let (nums, suffix) = match t.find('-') {
            Some(i) => (&t[..i], &t[i..]),
            None => (t, ""),
        };
        let parts: Vec<u64> = nums
            .split('.')
            .map(|p| {
                (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        if parts.is_empty() || parts.len() > 3 {
            return None;
        }
        Some(TagVersion {
            parts,
            suffix: suffix.to_owned(),
            v_prefix,
        })
    }

    fn same_flavour(&self, o: &TagVersion) -> bool {
        self.parts.len() == o.parts.len() && self.suffix == o.suffix && self.v_prefix == o.v_prefix
    }

    /// The step from `self` up to `newer`, when `newer` is newer and of the same flavour.
    pub fn change_to(&self, newer: &TagVersion) -> Option<Change> {
        if !self.same_flavour(newer) || newer.parts.cmp(&self.parts) != Ordering::Greater {
            return None;
        }
        let i = self
            .parts
            .iter()
            .zip(&newer.parts)
            .position(|(a, b)| a != b)?;
        Some(match i {
            0 => Change::Major,
            1 => Change::Minor,
            _ => Change::Patch,
        })
    }
}

/// The newest tag per kind of change, among `tags`, newer than `current`,
/// up to `track` (the largest change wanted).
pub fn newer_tags<'a>(
    current: &str,
    tags: impl IntoIterator<Item = &'a str>,
    track: Change,
) -> Vec<(Change, String)> {
    let Some(cur) = TagVersion::parse(current) else {
        return Vec::new();
    };
    let mut best: std::collections::BTreeMap<Change, (Vec<u64>, String)> = Default::default();
    for t in tags {
        let Some(v) = TagVersion::parse(t) else {
            continue;
        };
        let Some(c) = cur.change_to(&v) else { continue };
        if c > track {
            continue;
        }
        let e = best
            .entry(c)
            .or_insert_with(|| (v.parts.clone(), t.to_owned()));
        if v.parts > e.0 {
            *e = (v.parts, t.to_owned());
        }
    }
    best.into_iter().rev().map(|(c, (_, t))| (c, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_rejects_words() {
        assert_eq!(TagVersion::parse("1.27.3").unwrap().parts, [1, 27, 3]);
        assert!(TagVersion::parse("v2").unwrap().v_prefix);
        assert_eq!(TagVersion::parse("1.27-alpine").unwrap().suffix, "-alpine");
        for t in ["latest", "1..2", "1.2.3.4", "x1", "", "1.a"] {
            assert!(TagVersion::parse(t).is_none(), "{t}");
        }
    }

    #[test]
    fn finds_the_newest_per_change_and_honours_track() {
        let tags = [
            "1.0.0",
            "1.0.1",
            "1.0.3",
            "1.1.0",
            "1.2.5",
            "2.0.0",
            "3.1.0",
            "latest",
            "1.9",
            "1.3.0-alpine",
            "0.9.0",
        ];
        assert_eq!(
            newer_tags("1.0.1", tags, Change::Major),
            [
                (Change::Major, "3.1.0".to_owned()),
                (Change::Minor, "1.2.5".to_owned()),
                (Change::Patch, "1.0.3".to_owned())
            ]
        );
        assert_eq!(
            newer_tags("1.0.1", tags, Change::Minor),
            [
                (Change::Minor, "1.2.5".to_owned()),
                (Change::Patch, "1.0.3".to_owned())
            ]
        );
        assert_eq!(newer_tags("3.1.0", tags, Change::Major), []);
        assert_eq!(newer_tags("latest", tags, Change::Major), []);
        assert_eq!(
            newer_tags(
                "1.2-alpine",
                ["1.3-alpine", "1.4", "2.0-alpine"],
                Change::Major
            ),
            [
                (Change::Major, "2.0-alpine".to_owned()),
                (Change::Minor, "1.3-alpine".to_owned())
            ]
        );
    }
}
