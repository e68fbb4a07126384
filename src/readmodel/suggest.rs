//! "Did you mean": the names closest to a query that matched nothing, found
//! with bounded work.
//!
//! A request may name a thing with any string, and the matching runs on an
//! async worker. So a query longer than any valid name is refused before
//! matching ([`check_query`]), and the matching itself is bounded three ways:
//! a candidate whose length differs from the query's by more than the
//! distance accepted is skipped without computing anything, the edit distance
//! is computed only within a band of that width ([`distance_within`]), and the
//! cells computed per request are capped ([`MAX_CELLS`]): past it the search
//! stops with the suggestions found so far. A request then costs at most a
//! few milliseconds, whatever it sends and however many names are declared.

use super::ReadError;

/// Longest name or id any lookup accepts: a Kubernetes `namespace/pod/container`
/// (63 + 253 + 63 characters) is the longest valid one; monitor names are at
/// most 128 characters ([`crate::config::validate::MAX_NAME_CHARS`]).
pub const MAX_QUERY_CHARS: usize = 512;

/// Edit-distance cells computed per request, over every candidate: a few
/// milliseconds of work, and room for about 700 full comparisons of
/// 128-character names (most candidates stop after a few rows).
pub const MAX_CELLS: usize = 2_000_000;

/// Refuse `query` (what the caller called `field`) when it is longer than
/// `max` characters, before anything is matched against it.
pub fn check_query(field: &str, query: &str, max: usize) -> Result<(), ReadError> {
    // Bytes bound characters from above: most queries need no count.
    if query.len() <= max || query.chars().nth(max).is_none() {
        return Ok(());
    }
    Err(ReadError::BadArgument(format!(
        "{field} is {} characters long: names and ids are at most {max} characters \
         (starts with {:?})",
        query.chars().count(),
        query.chars().take(40).collect::<String>()
    )))
}

/// Check every text filter of a list (`name`, `group`, `state`): none longer
/// than [`MAX_QUERY_CHARS`], since nothing that long can match.
pub fn check_filters<'a>(
    filters: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), ReadError> {
    for (field, v) in filters {
        if let Some(v) = v {
            check_query(field, v, MAX_QUERY_CHARS)?;
        }
    }
    Ok(())
}

/// The largest distance at which a candidate is suggested: a third of the
/// longer name, at least 2 (a typo or two in a short name), at most
/// [`MAX_DISTANCE`].
pub fn accepted_distance(a_chars: usize, b_chars: usize) -> usize {
    (a_chars.max(b_chars) / 3).clamp(2, MAX_DISTANCE)
}

/// Past this many edits a name is another name, not a typo; it also keeps
/// the band of [`distance_within`] narrow for long names.
pub const MAX_DISTANCE: usize = 10;

/// Levenshtein distance of `a` and `b` (by characters) when it is at most
/// `max`, else `None`; computes at most `(2 * max + 1) * len(a)` cells, and
/// adds what it computed to `cells`.
pub fn distance_within(a: &[char], b: &[char], max: usize, cells: &mut usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    if b.is_empty() {
        return Some(a.len());
    }
    // Row i holds the distances of a[..i] to b[..j] for j within the band
    // |i - j| <= max; cells outside it are at least max + 1.
    let far = max + 1;
    let mut prev: Vec<usize> = (0..=b.len()).map(|j| j.min(far)).collect();
    let mut cur = vec![far; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        let row = i + 1;
        let lo = row.saturating_sub(max).max(1);
        let hi = (row + max).min(b.len());
        cur.fill(far);
        cur[0] = row.min(far);
        let mut best = cur[0];
        for j in lo..=hi {
            let sub = prev[j - 1] + usize::from(*ca != b[j - 1]);
            let v = sub.min(prev[j] + 1).min(cur[j - 1] + 1).min(far);
            cur[j] = v;
            best = best.min(v);
        }
        *cells += hi + 1 - lo.min(hi + 1);
        if best > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[b.len()];
    (d <= max).then_some(d)
}

/// Up to `take` candidates closest to `query`, closest first (ties by name):
/// a name containing the query or contained in it counts as distance 0, then
/// names within [`accepted_distance`]. Case-insensitive.
pub fn closest<'a>(
    query: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    take: usize,
) -> Vec<&'a str> {
    let ql = query.to_lowercase();
    let qc: Vec<char> = ql.chars().collect();
    let mut cells = 0usize;
    let mut scored: Vec<(usize, &'a str)> = Vec::new();
    for name in candidates {
        if cells >= MAX_CELLS {
            break;
        }
        let nl = name.to_lowercase();
        if nl.contains(&ql) || ql.contains(&nl) {
            scored.push((0, name));
            continue;
        }
        let nc: Vec<char> = nl.chars().collect();
        let max = accepted_distance(nc.len(), qc.len());
        if let Some(d) = distance_within(&nc, &qc, max, &mut cells) {
            scored.push((d, name));
        }
    }
    scored.sort();
    scored.dedup();
    scored.into_iter().take(take).map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &str, b: &str, max: usize) -> Option<usize> {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        distance_within(&a, &b, max, &mut 0)
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_one_within_the_bound() {
        for (a, b) in [
            ("postgres", "postgres-1"),
            ("api", "apo"),
            ("kitten", "sitting"),
            ("", "abc"),
            ("abc", ""),
            ("same", "same"),
            ("flaw", "lawn"),
        ] {
            let full = crate::readmodel::levenshtein(a, b);
            for max in 0..6 {
                let want = (full <= max).then_some(full);
                assert_eq!(d(a, b, max), want, "{a} {b} max {max}");
            }
        }
    }

    #[test]
    fn a_query_longer_than_any_name_is_refused_naming_the_bound() {
        let long = "x".repeat(100_000);
        let e = check_query("endpoint_id", &long, MAX_QUERY_CHARS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 512 characters"), "{e}");
        assert!(e.contains("100000 characters"), "{e}");
        assert!(e.len() < 300, "the error quotes only the start");
        assert!(check_query("x", &"é".repeat(512), MAX_QUERY_CHARS).is_ok());
    }

    #[test]
    fn matching_stops_at_the_cell_budget() {
        // 20k candidates of 128 characters, none close: the scan stops early.
        let names: Vec<String> = (0..20_000)
            .map(|i| format!("{i:0>128}").replace('0', "n"))
            .collect();
        let q = "q".repeat(130);
        assert!(closest(&q, names.iter().map(String::as_str), 3).is_empty());
        let mut cells = 0;
        let (a, b): (Vec<char>, Vec<char>) = (names[0].chars().collect(), q.chars().collect());
        let _ = distance_within(&a, &b, accepted_distance(a.len(), b.len()), &mut cells);
        assert!(cells <= (2 * MAX_DISTANCE + 1) * 128, "banded: {cells}");
    }

    #[test]
    fn close_names_are_suggested_closest_first() {
        let names = ["postgres-1", "redis", "postgrse", "api"];
        assert_eq!(
            closest("postgres", names, 3),
            vec!["postgres-1", "postgrse"]
        );
        assert_eq!(closest("REDIS", names, 3), vec!["redis"]);
        assert!(closest("zzzzzzzz", names, 3).is_empty());
    }
}
