//! The shape of every list answer: small by default, complete on request.
//!
//! An assistant pays for every byte of an answer, in context and in
//! attention (issue 24: 50 full container rows were 12 KB, a third of it
//! 64-character ids). So a list answers, by default, a *brief*: the counts
//! by state over every matching row first (a problem is never hidden by the
//! page size), then the rows that need attention, then the others in
//! natural name order while [`BRIEF_BUDGET`] lasts, with `next_cursor` and
//! `total` so nothing is lost. `detail: "full"` answers the full rows
//! (desired and observed), `limit` at a time, in natural name order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Page, ReadError, clamp_limit, decode_offset, encode_cursor};

/// Bytes of rows a brief answer holds when no `limit` is given. With the
/// counts, the cursor and the JSON around them, a default answer stays
/// under 4 KB whatever the list holds.
pub const BRIEF_BUDGET: usize = 3_300;

/// How much of each row a list answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// Counts by state, rows needing attention first, a few fields per row,
    /// about 4 KB at most.
    #[default]
    Brief,
    /// Every field of every row (desired and observed), `limit` rows a page.
    Full,
}

/// A list answer: brief rows with the counts, or full rows.
///
/// Field names sort so the counts come first (`structuredContent` is
/// serialised with its keys in alphabetical order).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Listing<B, F> {
    /// Brief answers: how many matching rows need attention (down, unhealthy,
    /// restarting, late, expiring, ...); they come first in `items`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<usize>,
    /// Brief answers: matching rows counted by state, over all pages.
    #[serde(skip_serializing_if = "no_counts")]
    pub by_state: Option<BTreeMap<String, usize>>,
    pub items: Vec<ListRow<B, F>>,
    /// Rows matching the filters, over all pages.
    pub total: usize,
    /// Pass as `cursor` (with the same `detail`) for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn no_counts(c: &Option<BTreeMap<String, usize>>) -> bool {
    c.as_ref().is_none_or(BTreeMap::is_empty)
}

/// One row of a [`Listing`].
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ListRow<B, F> {
    Brief(B),
    Full(F),
}

impl<B, F> Listing<B, F> {
    pub fn full(page: Page<F>) -> Self {
        Listing {
            attention: None,
            by_state: None,
            items: page.items.into_iter().map(ListRow::Full).collect(),
            total: page.total,
            next_cursor: page.next_cursor,
        }
    }
}

/// What a list row tells the brief about itself.
pub struct Facts<'a> {
    /// Its state, as counted in `by_state`.
    pub state: Cow<'a, str>,
    pub attention: bool,
}

/// The brief of `rows` (already in the order they list in): counts by
/// state, rows needing attention first (keeping their order), then the rest;
/// `limit` rows from `cursor`, or as many as fit [`BRIEF_BUDGET`] without one.
pub fn brief<S, B: Serialize, F>(
    rows: Vec<S>,
    facts: impl Fn(&S) -> Facts<'_>,
    to_brief: impl Fn(&S) -> B,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Listing<B, F>, ReadError> {
    let offset = decode_offset(cursor)?;
    let mut by_state = BTreeMap::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for row in rows {
        let f = facts(&row);
        *by_state.entry(f.state.into_owned()).or_insert(0) += 1;
        if f.attention {
            first.push(row);
        } else {
            rest.push(row);
        }
    }
    let attention = first.len();
    first.append(&mut rest);
    let total = first.len();
    let mut items = Vec::new();
    let mut used = 0usize;
    for row in first.iter().skip(offset) {
        let b = to_brief(row);
        match limit {
            Some(_) if items.len() >= clamp_limit(limit) => break,
            Some(_) => {}
            None => {
                // Sizing each row again costs about what answering it does,
                // and only for the rows of one page.
                let bytes = serde_json::to_vec(&b).map_or(0, |v| v.len()) + 1;
                if !items.is_empty() && used + bytes > BRIEF_BUDGET {
                    break;
                }
                used += bytes;
            }
        }
        items.push(ListRow::Brief(b));
    }
    let end = offset.saturating_add(items.len());
    Ok(Listing {
        attention: Some(attention),
        by_state: Some(by_state),
        items,
        total,
        next_cursor: (end < total).then(|| encode_cursor('o', end as i128)),
    })
}

/// The first 12 characters of a 64-hex Docker id, as `docker ps` shows it;
/// any other id (a pod's) unchanged. Every tool that takes an id accepts
/// this prefix.
pub fn short_id(id: &str) -> &str {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// Names in the order people count them: `c1, c2, ..., c10, c11`, not
/// `c1, c10, c100, c11`. Runs of digits compare by value, the rest without
/// case; exact text breaks ties, so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let dx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let dy = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let trim = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
                let (nx, ny) = (&x[trim(&x[..dx])..dx], &y[trim(&y[..dy])..dy]);
                let o = nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[dx..];
                y = &y[dy..];
            }
            (Some(p), Some(q)) => {
                let o = p.to_ascii_lowercase().cmp(&q.to_ascii_lowercase());
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// A serde enum's name (`"down"`), for the counts by state.
pub fn state_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_people_count() {
        let mut v = vec![
            "c10", "c2", "c100", "c1", "C3", "c11", "b", "c01", "web-2", "web-10",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "b", "c01", "c1", "c2", "C3", "c10", "c11", "c100", "web-2", "web-10"
            ]
        );
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
        assert_ne!(natural_cmp("A", "a"), Ordering::Equal);
    }

    #[test]
    fn short_ids_are_docker_ps_ids() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(short_id(&id), "0123456789ab");
        assert_eq!(short_id("default/web-1"), "default/web-1");
    }

    #[derive(Serialize)]
    struct Row {
        n: String,
    }

    #[test]
    fn a_brief_puts_attention_first_and_keeps_to_its_budget() {
        let rows: Vec<(String, bool)> = (1..=1000)
            .map(|i| (format!("row-{i:04}"), i % 100 == 0))
            .collect();
        fn facts(r: &(String, bool)) -> Facts<'_> {
            Facts {
                state: if r.1 { "down" } else { "up" }.into(),
                attention: r.1,
            }
        }
        fn to_brief(r: &(String, bool)) -> Row {
            Row { n: r.0.clone() }
        }
        let l: Listing<Row, ()> = brief(rows.clone(), facts, to_brief, None, None).unwrap();
        assert_eq!(l.attention, Some(10));
        assert_eq!(l.by_state.as_ref().unwrap()["down"], 10);
        assert_eq!(l.by_state.as_ref().unwrap()["up"], 990);
        assert_eq!(l.total, 1000);
        let bytes = serde_json::to_vec(&l).unwrap().len();
        assert!(bytes <= 4096, "{bytes}");
        let names: Vec<&str> = l
            .items
            .iter()
            .map(|r| match r {
                ListRow::Brief(b) => b.n.as_str(),
                ListRow::Full(()) => unreachable!(),
            })
            .collect();
        assert_eq!(names[..10].iter().filter(|n| n.ends_with("00")).count(), 10);
        assert!(names.len() > 20 && names.len() < 1000);
        // The next pages hold every other row exactly once.
        let mut seen = names.len();
        let mut cursor = l.next_cursor.clone();
        let mut pages = 0;
        while let Some(c) = cursor {
            pages += 1;
            assert!(pages < 100);
            let p: Listing<Row, ()> = brief(rows.clone(), facts, to_brief, None, Some(&c)).unwrap();
            seen += p.items.len();
            cursor = p.next_cursor;
        }
        assert_eq!(seen, 1000);
        let l: Listing<Row, ()> = brief(rows, facts, to_brief, Some(500), None).unwrap();
        assert_eq!(l.items.len(), 500);
    }
}
