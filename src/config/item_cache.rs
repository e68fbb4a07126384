//! Re-parse only the endpoints whose text changed.
//!
//! serde_yaml reads a whole document before deserializing it, which for a
//! 10k-monitor file is most of a reload. When the file has the plain layout
//! (a top-level block list of items), each item's text is a YAML document of
//! its own: items whose text is unchanged since the last load reuse their
//! parsed declaration, and only new text is parsed. Anything unusual (an
//! alias to another item, a flow list, an item that fails alone) makes this
//! path give up, and the caller parses the whole document as before, so
//! errors are always reported by the full parser with their positions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::locate::ItemSpans;
use super::model::{EndpointDecl, MonitorsFile};

/// Parsed items of the previous load, by a 128-bit hash of their text.
#[derive(Default)]
pub struct ItemCache {
    items: HashMap<u128, EndpointDecl>,
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

/// Split `text` into the document without its endpoint items (the list
/// replaced by `[]`) and the text of each item.
fn split<'t>(text: &'t str, (header, spans): &ItemSpans) -> (String, Vec<&'t str>) {
    let header = *header;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let last = spans.last().map_or(header + 1, |s| s.1);
    // Lines between the header and the first item must be blank or comments
    // (item_spans guarantees it); keep them out of both parts.
    let mut skeleton = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i == header {
            skeleton.push_str("endpoints: []\n");
        } else if i < header || i >= last {
            skeleton.push_str(line);
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

impl ItemCache {
    /// Parse `text` reusing unchanged items, or `None` to say "use the full parser".
    pub fn parse(&mut self, text: &str, spans: Option<&ItemSpans>) -> Option<MonitorsFile> {
        // Nothing to reuse: one parse of the whole document is faster than
        // one per item.
        if self.items.is_empty() {
            return None;
        }
        let (skeleton, items) = split(text, spans?);
        let mut file: MonitorsFile = serde_yaml::from_str(&skeleton).ok()?;
        if !file.endpoints.is_empty() {
            return None;
        }
        let mut next = HashMap::with_capacity(items.len());
        let mut endpoints = Vec::with_capacity(items.len());
        for item in items {
            let h = text_hash(item);
            let decl = match self.items.get(&h) {
                Some(d) => d.clone(),
                None => {
                    let mut one: Vec<EndpointDecl> = serde_yaml::from_str(item).ok()?;
                    if one.len() != 1 {
                        return None;
                    }
                    one.pop()?
                }
            };
            next.insert(h, decl.clone());
            endpoints.push(decl);
        }
        self.items = next;
        file.endpoints = endpoints;
        Some(file)
    }

    /// Remember the items of a document the full parser read.
    pub fn remember(&mut self, text: &str, spans: Option<&ItemSpans>, file: &MonitorsFile) {
        self.items.clear();
        if let Some((_, items)) = spans.map(|s| split(text, s))
            && items.len() == file.endpoints.len()
        {
            self.items = items
                .into_iter()
                .map(text_hash)
                .zip(file.endpoints.iter().cloned())
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::locate::item_spans;

    fn spans(text: &str) -> Option<ItemSpans> {
        item_spans(text, "endpoints")
    }
    use proptest::prelude::*;

    const BASE: &str = "defaults:\n  endpoint:\n    interval: 1m\nendpoints:\n  - name: a\n    url: http://a/\n    conditions:\n      - \"[STATUS] == 200\"\n  - name: b\n    url: tcp://b:1\n\n  # c\n  - name: c\n    url: http://c/\n    body: |\n      - not an item\n";

    fn full(text: &str) -> Option<String> {
        serde_yaml::from_str::<MonitorsFile>(text)
            .ok()
            .map(|f| format!("{f:?}"))
    }

    #[test]
    fn reuses_unchanged_items_and_matches_the_full_parser() {
        let base = BASE.to_owned();
        let mut cache = ItemCache::default();
        assert!(
            cache.parse(&base, spans(&base).as_ref()).is_none(),
            "an empty cache defers to the full parser"
        );
        let first: MonitorsFile = serde_yaml::from_str(&base).unwrap();
        cache.remember(&base, spans(&base).as_ref(), &first);
        assert_eq!(cache.items.len(), 3);
        let changed = base.replace("http://c/", "http://c2/");
        let got = cache
            .parse(&changed, spans(&changed).as_ref())
            .expect("plain layout");
        assert_eq!(Some(format!("{got:?}")), full(&changed));
        assert_eq!(
            got.defaults.endpoint.interval,
            first.defaults.endpoint.interval
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever the edit, the cached path never disagrees with the full parser.
        #[test]
        fn agrees_with_the_full_parser(pos in 0usize..400, insert in "[ -~\n]{0,12}", cut in 0usize..8) {
            let base = BASE.to_owned();
            let mut cache = ItemCache::default();
            cache.remember(&base, spans(&base).as_ref(), &serde_yaml::from_str(&base).unwrap());
            let mut text = base.clone();
            let at = (pos % text.len()).min(text.len());
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + cut).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(at..end, &insert);
            if let Some(got) = cache.parse(&text, spans(&text).as_ref()) {
                prop_assert_eq!(Some(format!("{got:?}")), full(&text), "{:?}", text);
            }
        }
    }
}
