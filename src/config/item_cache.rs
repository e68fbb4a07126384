//! Reuse what an unchanged endpoint resolved to.
//!
//! serde_yaml reads a whole document before deserializing it, and every
//! endpoint is then validated and resolved: for a 10k-monitor file that is
//! most of a reload. When the file has the plain layout (a top-level block
//! list of items), each item's text is a YAML document of its own, and what
//! it resolves to depends only on that text and on `defaults.endpoint`. So a
//! reload keeps, for each item whose text (and the defaults) did not change,
//! the very `Arc<MonitorSpec>` of the last load: nothing is parsed or
//! validated again for it, and the desired state sees the same pointer (its
//! cheapest "unchanged"). Only new text is parsed and validated.
//!
//! Anything unusual (an alias to another item, a flow list, an item that
//! fails alone, a problem of any kind) makes this path give up, and the
//! caller parses the whole document, so errors are always reported by the
//! full parser with their positions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::locate::ItemSpans;
use super::model::{EndpointDecl, MonitorsFile};
use crate::monitor::MonitorSpec;

/// What the items of the last good load resolved to, by a 128-bit hash of
/// their text.
#[derive(Default)]
pub struct ItemCache {
    /// Hash of the `defaults.endpoint` every cached spec was resolved with.
    defaults: u128,
    items: HashMap<u128, Arc<MonitorSpec>>,
}

/// One endpoint item of a document split by [`ItemCache::split`].
pub enum Slot {
    /// Same text and defaults as in the last good load: its resolved spec.
    Cached(Arc<MonitorSpec>),
    /// New text, parsed alone; still to be validated. (Boxed: most slots
    /// are cached, and a slot should not cost a declaration's size.)
    Fresh(Box<EndpointDecl>),
}

/// A document read item by item.
pub struct Split {
    /// The document without its endpoint items, lines kept in place: what
    /// the other sections are located in (an index of it is cheap).
    pub skeleton: String,
    /// Everything but the endpoints (whose list is empty here).
    pub rest: MonitorsFile,
    /// The endpoint items, in document order.
    pub slots: Vec<Slot>,
    /// Each item's text hash, in document order; `None` for an item that
    /// must never come from the cache (see [`cacheable`]).
    pub hashes: Vec<Option<u128>>,
}

/// An item that may hold a YAML alias (`*name`) resolves to something its
/// own text does not say: it is parsed again at every load. (A `*` in a
/// string costs only that.)
fn cacheable(item: &str) -> Option<u128> {
    (!item.contains('*')).then(|| text_hash(item))
}

fn text_hash(text: &str) -> u128 {
    // Two independent 64-bit SipHashes: a collision would give a monitor
    // another's spec, so 64 bits alone are not enough margin for comfort.
    let mut a = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0xA5u8.hash(&mut b);
    text.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// What an endpoint's resolution depends on besides its own text.
pub fn defaults_hash(file: &MonitorsFile) -> u128 {
    text_hash(&format!("{:?}", file.defaults.endpoint))
}

/// Split `text` into the document without its endpoint items (the list
/// replaced by `[]`, each item line left empty so that every other line and
/// column is where it was) and the text of each item.
fn split_text<'t>(text: &'t str, (header, spans): &ItemSpans) -> (String, Vec<&'t str>) {
    let header = *header;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let last = spans.last().map_or(header + 1, |s| s.1);
    // Lines between the header and the first item must be blank or comments
    // (item_spans guarantees it); keep them out of both parts.
    let mut skeleton = String::with_capacity(text.len() / 8);
    for (i, line) in lines.iter().enumerate() {
        if i == header {
            skeleton.push_str("endpoints: []\n");
        } else if i < header || i >= last {
            skeleton.push_str(line);
        } else if line.ends_with('\n') {
            skeleton.push('\n');
        }
    }
    let start_offsets: Vec<usize> = std::iter::once(0)
        .chain(lines.iter().scan(0, |acc, l| {
            *acc += l.len();
            Some(*acc)
        }))
        .collect();
    let items = spans
        .iter()
        .map(|&(s, e)| &text[start_offsets[s]..start_offsets[e]])
        .collect();
    (skeleton, items)
}

fn has_lone_cr(text: &str) -> bool {
    text.contains('\r') && text.split('\r').skip(1).any(|rest| !rest.starts_with('\n'))
}

/// The text hash of each endpoint item, when the layout is the plain one.
pub fn item_hashes(text: &str, spans: Option<&ItemSpans>) -> Option<Vec<Option<u128>>> {
    let (_, items) = split_text(text, spans?);
    Some(items.into_iter().map(cacheable).collect())
}

impl ItemCache {
    /// Read `text` item by item, reusing what the last load resolved; `None`
    /// says "use the full parser" (nothing cached, the defaults changed, or
    /// the layout is not the plain one).
    pub fn split(&self, text: &str, spans: Option<&ItemSpans>) -> Option<Split> {
        // Nothing to reuse: one parse of the whole document is faster than
        // one per item.
        if self.items.is_empty() {
            return None;
        }
        if has_lone_cr(text) {
            // YAML breaks lines at a lone `\r`; the skeleton would not keep
            // every line where it was.
            return None;
        }
        let (skeleton, items) = split_text(text, spans?);
        let rest: MonitorsFile = serde_yaml::from_str(&skeleton).ok()?;
        if !rest.endpoints.is_empty() || defaults_hash(&rest) != self.defaults {
            return None;
        }
        let mut slots = Vec::with_capacity(items.len());
        let mut hashes = Vec::with_capacity(items.len());
        for item in items {
            let h = cacheable(item);
            let slot = match h.and_then(|h| self.items.get(&h)) {
                Some(spec) => Slot::Cached(spec.clone()),
                None => {
                    let mut one: Vec<EndpointDecl> = serde_yaml::from_str(item).ok()?;
                    if one.len() != 1 {
                        return None;
                    }
                    Slot::Fresh(Box::new(one.pop()?))
                }
            };
            slots.push(slot);
            hashes.push(h);
        }
        Some(Split {
            skeleton,
            rest,
            slots,
            hashes,
        })
    }

    /// Remember what a good load's items resolved to (forgetting the rest):
    /// `hashes` and `specs` are in document order.
    pub fn remember(
        &mut self,
        defaults: u128,
        hashes: &[Option<u128>],
        specs: &[Arc<MonitorSpec>],
    ) {
        self.items.clear();
        if hashes.len() == specs.len() {
            self.defaults = defaults;
            self.items = hashes
                .iter()
                .zip(specs)
                .filter_map(|(h, spec)| Some(((*h)?, spec.clone())))
                .collect();
        }
    }

    /// Forget everything (the next load parses the whole document).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::ItemCache;
    use crate::config::{ConfigError, parse_file};
    use crate::monitor::DeclaredMonitor;
    use proptest::prelude::*;

    const BASE: &str = "defaults:\n  endpoint:\n    interval: 1m\nendpoints:\n  - name: a\n    url: http://a/\n    conditions:\n      - \"[STATUS] == 200\"\n  - name: b\n    url: tcp://b:1\n\n  # c\n  - name: c\n    url: http://c/\n    body: |\n      - not an item\nheartbeats:\n  - name: h\n    period: 1h\n";

    fn env(_: &str) -> Option<String> {
        None
    }

    /// The monitors (or errors) of `text`, through `cache` or without one.
    fn parse(
        text: &str,
        cache: Option<&mut ItemCache>,
    ) -> Result<Vec<DeclaredMonitor>, Vec<ConfigError>> {
        parse_file(text, Path::new("m.yaml"), &env, cache)
            .map(|(p, _)| p.into_iter().map(|p| p.monitor).collect())
    }

    fn spec_of<'m>(m: &'m [DeclaredMonitor], name: &str) -> &'m Arc<crate::monitor::MonitorSpec> {
        &m.iter().find(|m| m.spec.name() == name).unwrap().spec
    }

    #[test]
    fn unchanged_items_keep_their_resolved_spec() {
        let mut cache = ItemCache::default();
        let first = parse(BASE, Some(&mut cache)).unwrap();
        assert_eq!(cache.items.len(), 3, "every endpoint remembered");
        let changed = BASE.replace("http://c/", "http://c2/");
        let second = parse(&changed, Some(&mut cache)).unwrap();
        assert_eq!(
            second,
            parse(&changed, None).unwrap(),
            "same as the full parser"
        );
        for name in ["a", "b"] {
            assert!(
                Arc::ptr_eq(spec_of(&first, name), spec_of(&second, name)),
                "{name} is the same Arc"
            );
        }
        assert!(!Arc::ptr_eq(spec_of(&first, "c"), spec_of(&second, "c")));
        // A line added above moves every origin: the specs stay shared.
        let moved = format!("# comment\n{changed}");
        let third = parse(&moved, Some(&mut cache)).unwrap();
        assert_eq!(third, parse(&moved, None).unwrap());
        assert!(Arc::ptr_eq(spec_of(&second, "c"), spec_of(&third, "c")));
    }

    #[test]
    fn changed_defaults_resolve_every_item_again() {
        let mut cache = ItemCache::default();
        let first = parse(BASE, Some(&mut cache)).unwrap();
        let text = BASE.replace("interval: 1m", "interval: 2m");
        let second = parse(&text, Some(&mut cache)).unwrap();
        assert_eq!(second, parse(&text, None).unwrap());
        assert!(!Arc::ptr_eq(spec_of(&first, "a"), spec_of(&second, "a")));
        assert_eq!(spec_of(&second, "a").interval().as_secs(), 120);
    }

    #[test]
    fn problems_come_from_the_full_parser() {
        let mut cache = ItemCache::default();
        parse(BASE, Some(&mut cache)).unwrap();
        for bad in [
            BASE.replace("name: c", "name: a"),
            BASE.replace("http://c/", "ftp://c/"),
            BASE.replace("tcp://b:1", "tcp://b:1\n    intervall: 5s"),
            BASE.replace("period: 1h", "period: 0s"),
        ] {
            let cached = parse(&bad, Some(&mut cache)).unwrap_err();
            assert_eq!(cached, parse(&bad, None).unwrap_err(), "{bad}");
            // The last good items stay cached for when the file is fixed.
            assert_eq!(cache.items.len(), 3);
        }
    }

    #[test]
    fn an_alias_is_never_taken_from_the_cache() {
        let text = "endpoints:\n  - name: a\n    url: &u http://a/\n  - name: b\n    url: *u\n";
        let mut cache = ItemCache::default();
        parse(text, Some(&mut cache)).unwrap();
        let changed = text.replace("http://a/", "http://a2/");
        let got = parse(&changed, Some(&mut cache)).unwrap();
        assert_eq!(got, parse(&changed, None).unwrap());
        let target = |m: &DeclaredMonitor| match m.spec.as_ref() {
            crate::monitor::MonitorSpec::Endpoint(e) => e.target.display(),
            other => panic!("{other:?}"),
        };
        assert_eq!(target(&got[1]), "http://a2/", "b follows its alias");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever the edit, the cached path never disagrees with the full parser.
        #[test]
        fn agrees_with_the_full_parser(pos in 0usize..400, insert in "[ -~\n]{0,12}", cut in 0usize..8) {
            let mut cache = ItemCache::default();
            parse(BASE, Some(&mut cache)).unwrap();
            let mut text = BASE.to_owned();
            let at = (pos % text.len()).min(text.len());
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + cut).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(at..end, &insert);
            prop_assert_eq!(parse(&text, Some(&mut cache)), parse(&text, None), "{:?}", text);
        }
    }
}
