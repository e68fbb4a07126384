//! Where each YAML node is: serde_yaml has no spans, so a second pass with
//! yaml-rust2's event parser maps paths such as `endpoints[3].url` to the
//! position of the key and of the value. Best effort: on input the parser
//! rejects, the index holds what was seen before the error (callers fall back
//! to a coarser position).

use std::collections::HashMap;

use yaml_rust2::Event;
use yaml_rust2::parser::Parser;

/// A position in a text: 1-based line, 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `Seg::Key` from a `&str`.
pub(crate) fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

/// Where a node is: its key (for a mapping value) and the node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodePos {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// Positions of the nodes of the first document of a YAML text.
#[derive(Debug, Default)]
pub(crate) struct Index {
    nodes: HashMap<Vec<Seg>, NodePos>,
}

enum Frame {
    Seq {
        path: Option<Vec<Seg>>,
        next: usize,
    },
    Map {
        path: Option<Vec<Seg>>,
        state: MapState,
    },
}

enum MapState {
    /// The next node is a key.
    Key,
    /// The next node is the value of this key (`None`: a complex or odd key,
    /// whose value is not indexed).
    Value(Option<(String, Pos)>),
}

impl Index {
    /// Index `text`. Never panics (a panic in the YAML parser is caught and
    /// gives an empty index).
    pub fn build(text: &str) -> Index {
        std::panic::catch_unwind(|| Self::build_inner(text)).unwrap_or_default()
    }

    fn build_inner(text: &str) -> Index {
        let mut index = Index::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        let mut docs = 0;
        while let Ok((event, mark)) = parser.next_token() {
            // yaml-rust2 lines are 1-based, columns 0-based.
            let pos = Pos {
                line: mark.line(),
                col: mark.col() + 1,
            };
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    docs += 1;
                    if docs > 1 {
                        break;
                    }
                }
                Event::Scalar(ref value, ..) => {
                    index.node_start(&mut stack, pos, Some(value));
                }
                Event::Alias(_) => {
                    index.node_start(&mut stack, pos, None);
                }
                Event::SequenceStart(..) => {
                    let path = index.node_start(&mut stack, pos, None);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingStart(..) => {
                    let path = index.node_start(&mut stack, pos, None);
                    stack.push(Frame::Map {
                        path,
                        state: MapState::Key,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                }
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            }
        }
        index
    }

    /// A node starts at `pos`: work out its path, record it, and return the
    /// path (for a collection's frame). `scalar` is the text of a scalar node.
    fn node_start(
        &mut self,
        stack: &mut [Frame],
        pos: Pos,
        scalar: Option<&String>,
    ) -> Option<Vec<Seg>> {
        let Some(top) = stack.last_mut() else {
            self.nodes.insert(
                Vec::new(),
                NodePos {
                    key: None,
                    value: pos,
                },
            );
            return Some(Vec::new());
        };
        match top {
            Frame::Seq { path, next } => {
                let i = *next;
                *next += 1;
                let path = path.as_ref()?;
                let mut p = path.clone();
                p.push(Seg::Index(i));
                self.nodes.insert(
                    p.clone(),
                    NodePos {
                        key: None,
                        value: pos,
                    },
                );
                Some(p)
            }
            Frame::Map { path, state } => match std::mem::replace(state, MapState::Key) {
                MapState::Key => {
                    // The mapping's own position is where its first key is,
                    // when that comes first (block mappings report the
                    // mapping start after the first key).
                    if let Some(path) = path.as_ref()
                        && let Some(node) = self.nodes.get_mut(path)
                        && pos < node.value
                    {
                        node.value = pos;
                    }
                    *state = MapState::Value(scalar.map(|s| (s.clone(), pos)));
                    // A complex key's own contents are not indexed.
                    None
                }
                MapState::Value(k) => {
                    let (k, key_pos) = k?;
                    let mut p = path.as_ref()?.clone();
                    p.push(Seg::Key(k));
                    self.nodes.insert(
                        p.clone(),
                        NodePos {
                            key: Some(key_pos),
                            value: pos,
                        },
                    );
                    Some(p)
                }
            },
        }
    }

    pub fn get(&self, path: &[Seg]) -> Option<NodePos> {
        self.nodes.get(path).copied()
    }

    /// The position of the value at `path`.
    pub fn value(&self, path: &[Seg]) -> Option<Pos> {
        self.get(path).map(|n| n.value)
    }

    /// The position of the key of `path` (the value's when it has no key).
    pub fn key(&self, path: &[Seg]) -> Option<Pos> {
        self.get(path).map(|n| n.key.unwrap_or(n.value))
    }
}

/// Converts between byte offsets and (line, column) positions of a text.
/// Columns count characters. Out-of-range input is clamped, never a panic.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let lone_cr = b == b'\r' && bytes.get(i + 1) != Some(&b'\n');
            if b == b'\n' || lone_cr {
                starts.push(i + 1);
            }
        }
        LineIndex { text, starts }
    }

    /// The byte offset of a 1-based (line, column).
    pub fn offset(&self, pos: Pos) -> usize {
        let line = pos.line.clamp(1, self.starts.len());
        let start = self.starts[line - 1];
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        let rest = &self.text[start..end];
        let within = rest
            .char_indices()
            .nth(pos.col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i);
        start + within
    }

    /// The 1-based (line, column) of a byte offset.
    pub fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let col = self.text[self.starts[line - 1]..offset].chars().count() + 1;
        Pos { line, col }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn indexes_keys_values_and_items() {
        let text = "endpoints:\n  - name: a\n    url: x\n  - {name: b, url: \"y\"}\n  -\n    name: c\ndefaults:\n  endpoint: {interval: 5s}\n";
        let idx = Index::build(text);
        let ep = |i: usize, k: &str| vec![key("endpoints"), Seg::Index(i), key(k)];
        assert_eq!(idx.value(&[key("endpoints"), Seg::Index(0)]), Some(p(2, 5)));
        assert_eq!(idx.key(&ep(0, "name")), Some(p(2, 5)));
        assert_eq!(idx.value(&ep(0, "name")), Some(p(2, 11)));
        assert_eq!(idx.key(&ep(0, "url")), Some(p(3, 5)));
        assert_eq!(idx.value(&ep(0, "url")), Some(p(3, 10)));
        assert_eq!(idx.value(&[key("endpoints"), Seg::Index(1)]), Some(p(4, 5)));
        assert_eq!(idx.value(&ep(1, "url")), Some(p(4, 20)));
        assert_eq!(idx.key(&ep(2, "name")), Some(p(6, 5)));
        assert_eq!(
            idx.value(&[key("defaults"), key("endpoint"), key("interval")]),
            Some(p(8, 24))
        );
    }

    #[test]
    fn survives_complex_keys_aliases_and_errors() {
        let idx = Index::build("? [a, b]\n: x\nc: &A 1\nd: *A\ne: [\n");
        assert_eq!(idx.value(&[key("c")]), Some(p(3, 7))); // after the anchor
        assert_eq!(idx.value(&[key("d")]), Some(p(4, 4)));
        let idx = Index::build("a: [}\n");
        assert_eq!(idx.value(&[key("b")]), None);
    }

    #[test]
    fn line_index_round_trips_and_clamps() {
        let text = "ab\néc\r\nx\ry";
        let li = LineIndex::new(text);
        assert_eq!(li.pos(0), p(1, 1));
        assert_eq!(li.pos(3), p(2, 1));
        assert_eq!(li.pos(text.find('c').unwrap()), p(2, 2));
        assert_eq!(li.offset(p(2, 2)), text.find('c').unwrap());
        assert_eq!(li.pos(text.find('y').unwrap()), p(4, 1));
        assert_eq!(li.pos(4), p(2, 1)); // inside é: floor to the char
        assert_eq!(li.offset(p(99, 99)), text.len());
        assert_eq!(li.offset(p(0, 0)), 0);
        assert_eq!(li.pos(1000), li.pos(text.len()));
    }
}

/// An [`Index`] built on first use.
pub(crate) struct LazyIndex<'a> {
    text: &'a str,
    cell: std::cell::OnceCell<Index>,
}

impl<'a> LazyIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        LazyIndex {
            text,
            cell: std::cell::OnceCell::new(),
        }
    }

    pub fn get(&self) -> &Index {
        self.cell.get_or_init(|| Index::build(self.text))
    }
}

/// The items of the top-level block sequence `key:`, found by scanning lines
/// instead of parsing (a full [`Index`] of a 10k-monitor file costs more than
/// parsing it). Returns the header's line and each item's lines as
/// `(first, end)` (0-based, end exclusive), or `None` when the layout is not
/// the plain one (flow style, `-` alone on its line, ...). Callers check the
/// count against the parsed list and fall back to the full index.
pub(crate) fn item_spans(text: &str, key: &str) -> Option<ItemSpans> {
    let mut lines = text.lines().enumerate();
    let header = format!("{key}:");
    let (header_line, _) = lines.by_ref().find(|(_, l)| {
        l.strip_prefix(&header).is_some_and(|rest| {
            let rest = rest.trim();
            rest.is_empty() || rest.starts_with('#')
        })
    })?;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut item_indent = None;
    let mut end = None;
    let mut line_count = header_line + 1;
    for (n, line) in lines {
        line_count = n + 1;
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        match item_indent {
            None if content.starts_with('-') => item_indent = Some(indent),
            None => {
                end = Some(n);
                break;
            }
            Some(_) => {}
        }
        let item_indent = item_indent?;
        if indent < item_indent || (indent == item_indent && !content.starts_with('-')) {
            end = Some(n);
            break;
        }
        if indent == item_indent {
            let after = content.strip_prefix('-')?;
            let first_key = after.trim_start_matches(' ');
            if first_key.is_empty() || first_key.starts_with('#') || after.len() == first_key.len()
            {
                return None;
            }
            if let Some(last) = spans.last_mut() {
                last.1 = n;
            }
            spans.push((n, n + 1));
        }
    }
    if let Some(last) = spans.last_mut() {
        // The list runs to the end of the text when nothing ended it.
        last.1 = end.unwrap_or(line_count);
    }
    Some((header_line, spans))
}

/// The header line of a top-level list and each item's `(first, end)` lines.
pub(crate) type ItemSpans = (usize, Vec<(usize, usize)>);

/// The position of each item of `key:` (where its first key is); see [`item_spans`].
#[cfg(test)]
pub(crate) fn fast_item_positions(text: &str, key: &str) -> Option<Vec<Pos>> {
    let (_, spans) = item_spans(text, key)?;
    Some(item_positions(text, &spans))
}

/// Where each item found by [`item_spans`] starts (its first key).
pub(crate) fn item_positions(text: &str, spans: &[(usize, usize)]) -> Vec<Pos> {
    // One pass over the lines, taking each item's first line (spans are sorted).
    let mut firsts = spans.iter().map(|&(first, _)| first).peekable();
    let mut out = Vec::with_capacity(spans.len());
    for (n, line) in text.lines().enumerate() {
        if firsts.peek().is_none() {
            break;
        }
        if firsts.next_if_eq(&n).is_some() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            let after = &line[indent + 1..];
            let col = indent + 1 + (after.len() - after.trim_start_matches(' ').len()) + 1;
            out.push(Pos { line: n + 1, col });
        }
    }
    out
}

#[cfg(test)]
mod fast_tests {
    use super::*;

    #[test]
    fn fast_item_positions_agree_with_the_full_index() {
        for text in [
            "endpoints:\n  - name: a\n    url: x\n  - name: b\n    body: |\n      - not an item\n",
            "# c\nendpoints:   # list\n- name: a\n  url: x\n\n-   name: b\ndefaults: {}\n",
            "defaults:\n  endpoint: {}\nendpoints:\n    - url: x\n      name: a\n",
        ] {
            let fast = fast_item_positions(text, "endpoints").expect("plain layout");
            let index = Index::build(text);
            let full: Vec<Pos> = (0..fast.len())
                .map(|i| index.value(&[key("endpoints"), Seg::Index(i)]).unwrap())
                .collect();
            assert_eq!(fast, full, "{text:?}");
            assert!(
                index
                    .value(&[key("endpoints"), Seg::Index(fast.len())])
                    .is_none(),
                "{text:?}"
            );
        }
        assert_eq!(fast_item_positions("endpoints: []\n", "endpoints"), None);
        assert_eq!(
            fast_item_positions("endpoints:\n  -\n    name: a\n", "endpoints"),
            None
        );
    }
}
