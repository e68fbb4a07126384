//! `${VAR}` expansion on the raw text of a monitors file, before YAML parsing.
//!
//! - `${VAR}` is replaced by the variable's value (an unset variable is an error);
//! - `${VAR:-default}` uses `default` when `VAR` is unset or empty;
//! - `$${` is a literal `${`.
//!
//! Expansion is textual (like docker-compose): a value is inserted as is, so
//! it should be quoted in the YAML if it may contain YAML syntax. Nothing is
//! expanded inside `#` comments (a `#` at the start of a line or after
//! whitespace, outside quotes: a heuristic, good enough for real files), so a
//! commented-out monitor never needs its variables set.
//!
//! The expanded text keeps every line where it was (unless a value itself
//! contains a line break); [`Expanded::to_original`] maps an offset in the
//! expanded text back to the original text, so errors point at what the
//! person wrote.

/// One replaced span: `orig_start..orig_end` in the original text became
/// `exp_start..exp_end` in the expanded text.
#[derive(Debug, Clone, Copy)]
struct Subst {
    orig_start: usize,
    orig_end: usize,
    exp_start: usize,
    exp_end: usize,
}

/// The text after expansion, with what is needed to map offsets back.
#[derive(Debug, Clone)]
pub(crate) struct Expanded {
    pub text: String,
    substs: Vec<Subst>,
}

/// A problem found while expanding, at a byte offset of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub offset: usize,
    pub message: String,
}

impl Expanded {
    /// Nothing was replaced: every offset is the same in both texts.
    pub fn is_verbatim(&self) -> bool {
        self.substs.is_empty()
    }

    /// Map a byte offset of the expanded text to the original text. An offset
    /// inside an inserted value maps to the `${` that produced it.
    pub fn to_original(&self, exp: usize) -> usize {
        let i = self.substs.partition_point(|s| s.exp_start <= exp);
        if i == 0 {
            return exp;
        }
        let s = self.substs[i - 1];
        if exp < s.exp_end {
            s.orig_start
        } else {
            exp - s.exp_end + s.orig_end
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expand every `${...}` of `text` outside comments. All problems are
/// reported, not just the first.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Expanded, Vec<ExpandError>> {
    // Most files use no variable (`$${` contains `${` too).
    if !text.contains("${") {
        return Ok(Expanded {
            text: text.to_owned(),
            substs: Vec::new(),
        });
    }
    let mut out = String::with_capacity(text.len());
    let mut substs = Vec::new();
    let mut errors = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        expand_line(line, line_start, env, &mut out, &mut substs, &mut errors);
        line_start += line.len();
    }
    if errors.is_empty() {
        Ok(Expanded { text: out, substs })
    } else {
        Err(errors)
    }
}

fn expand_line(
    line: &str,
    base: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    substs: &mut Vec<Subst>,
    errors: &mut Vec<ExpandError>,
) {
    let bytes = line.as_bytes();
    // Quote state: None, or the quote character that opened the string.
    let mut quote: Option<u8> = None;
    let mut prev: Option<u8> = None;
    let mut i = 0;
    let mut copied = 0; // bytes of `line` already copied to `out`
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => {
                // Skip the escaped character (ASCII-only escapes matter here).
                i += 2;
                prev = None;
                continue;
            }
            Some(q) if b == q => quote = None,
            None if b == b'#' && prev.is_none_or(|p| p == b' ' || p == b'\t') => break,
            None if (b == b'"' || b == b'\'')
                && prev.is_none_or(|p| matches!(p, b' ' | b'\t' | b'[' | b'{' | b',')) =>
            {
                quote = Some(b)
            }
            _ => {}
        }
        if b == b'$' && bytes[i..].starts_with(b"$${") {
            out.push_str(&line[copied..i]);
            let exp_start = out.len();
            out.push_str("${");
            substs.push(Subst {
                orig_start: base + i,
                orig_end: base + i + 3,
                exp_start,
                exp_end: out.len(),
            });
            i += 3;
            copied = i;
            prev = Some(b'{');
            continue;
        }
        if b == b'$' && bytes[i..].starts_with(b"${") {
            out.push_str(&line[copied..i]);
            let Some(close) = line[i + 2..].find('}') else {
                errors.push(ExpandError {
                    offset: base + i,
                    message: "unterminated ${: add the closing } (write $${ for a literal ${)"
                        .into(),
                });
                // Keep the rest of the line as is.
                copied = i;
                break;
            };
            let end = i + 2 + close + 1;
            let inner = &line[i + 2..end - 1];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let value = if !valid_name(name) {
                errors.push(ExpandError {
                    offset: base + i,
                    message: format!(
                        "invalid variable name {name:?} in ${{{inner}}}: use letters, digits and _ (write $${{ for a literal ${{)"
                    ),
                });
                String::new()
            } else {
                match (env(name), default) {
                    (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_owned(),
                    (None, None) => {
                        errors.push(ExpandError {
                            offset: base + i,
                            message: format!(
                                "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                            ),
                        });
                        String::new()
                    }
                }
            };
            let exp_start = out.len();
            out.push_str(&value);
            substs.push(Subst {
                orig_start: base + i,
                orig_end: base + end,
                exp_start,
                exp_end: out.len(),
            });
            i = end;
            copied = end;
            prev = Some(b'}');
            continue;
        }
        prev = Some(b);
        i += 1;
    }
    out.push_str(&line[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.com".into()),
            "EMPTY" => Some(String::new()),
            "LONG" => Some("a-much-longer-value".into()),
            _ => None,
        }
    }

    fn exp(text: &str) -> Result<String, Vec<ExpandError>> {
        expand(text, &env).map(|e| e.text)
    }

    #[test]
    fn expands_values_defaults_and_escapes() {
        assert_eq!(
            exp("url: http://${HOST}/x\n").unwrap(),
            "url: http://example.com/x\n"
        );
        assert_eq!(exp("a: ${NOPE:-dflt}").unwrap(), "a: dflt");
        assert_eq!(exp("a: ${EMPTY:-dflt}").unwrap(), "a: dflt");
        assert_eq!(exp("a: ${EMPTY}").unwrap(), "a: ");
        assert_eq!(exp("a: ${HOST:-dflt}").unwrap(), "a: example.com");
        assert_eq!(exp("a: ${NOPE:-}").unwrap(), "a: ");
        assert_eq!(exp("a: $${HOST} $$ $x").unwrap(), "a: ${HOST} $$ $x");
        assert_eq!(
            exp("a: \"${HOST} # not a comment\"").unwrap(),
            "a: \"example.com # not a comment\""
        );
        assert_eq!(exp("a: x#${HOST}").unwrap(), "a: x#example.com");
    }

    #[test]
    fn skips_comments() {
        let text = "# ${NOPE}\na: ${HOST} # ${ALSO_NOPE}\n  # - url: ${X}\n";
        assert_eq!(
            exp(text).unwrap(),
            "# ${NOPE}\na: example.com # ${ALSO_NOPE}\n  # - url: ${X}\n"
        );
    }

    #[test]
    fn reports_every_unset_variable_at_its_offset() {
        let text = "a: ${ONE}\nb: x ${TWO} ${HOST}\n";
        let errs = exp(text).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].offset, 3);
        assert_eq!(
            errs[0].message,
            "environment variable ONE is not set (use ${ONE:-default} for a default)"
        );
        assert_eq!(errs[1].offset, text.find("${TWO}").unwrap());
    }

    #[test]
    fn reports_bad_syntax() {
        let errs = exp("a: ${HOST\nb: ${1x} ${}").unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].message.contains("unterminated"));
        assert!(errs[1].message.contains("invalid variable name"));
    }

    #[test]
    fn maps_offsets_back() {
        let text = "a: ${LONG} b\nc: $${ d";
        let e = expand(text, &env).unwrap();
        let b_exp = e.text.find(" b").unwrap();
        assert_eq!(e.to_original(b_exp), text.find(" b").unwrap());
        // inside the inserted value -> the `${`
        assert_eq!(e.to_original(5), 3);
        let d_exp = e.text.find(" d").unwrap();
        assert_eq!(e.to_original(d_exp), text.find(" d").unwrap());
        assert_eq!(e.to_original(0), 0);
    }
}
