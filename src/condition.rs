//! Gatus-style conditions on an endpoint check (`[STATUS] < 300`,
//! `[RESPONSE_TIME] < 500`, `[BODY].status == UP`, `[CONNECTED] == true`,
//! `[CERTIFICATE_EXPIRATION] > 72h`): parsed once when the monitors file is
//! loaded, evaluated against the facts of each check.
//!
//! Syntax: `LEFT OP RIGHT`.
//! - LEFT: `[STATUS]`, `[RESPONSE_TIME]` (milliseconds), `[BODY]` (the whole
//!   body as text), `[BODY].a.b[0].c` (a JSON path into the body),
//!   `[CONNECTED]`, `[CERTIFICATE_EXPIRATION]` (time left on the served
//!   certificate), `len([BODY])` / `len([BODY].path)`.
//! - OP: `==`, `!=`, `<`, `<=`, `>`, `>=`.
//! - RIGHT: a number, a duration such as `500ms` or `72h` (for
//!   `[RESPONSE_TIME]` and `[CERTIFICATE_EXPIRATION]`, where a plain number
//!   means milliseconds), `true`/`false`, a bare or `"quoted"` string,
//!   `pat(*glob*)` or `any(a, b, c)` (both only with `==` / `!=`).
//!
//! Numbers compare as numbers; anything else compares by its text, so
//! `[BODY].status == UP` matches `{"status":"UP"}` and `[BODY].count == 3`
//! matches `{"count":3}`. The whole `[BODY]` (and `len([BODY])`) is taken with
//! surrounding whitespace trimmed: a trailing newline does not make
//! `[BODY] == OK` fail.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A parsed condition. Its string form is canonical and round-trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    left: Left,
    op: Op,
    right: Right,
}

/// What one check observed, for conditions to judge.
#[derive(Debug, Clone, Default)]
pub struct CheckFacts<'a> {
    pub status: Option<u16>,
    pub response_time: std::time::Duration,
    pub body: Option<&'a [u8]>,
    pub connected: bool,
    /// Time left until the served certificate expires (https only).
    pub certificate_expiration: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid condition {input:?}: {reason}")]
pub struct ConditionError {
    pub input: String,
    pub reason: String,
}

/// The fact a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `[STATUS]`: the HTTP status code.
    Status,
    /// `[RESPONSE_TIME]`: milliseconds until the response (or connection).
    ResponseTime,
    /// `[BODY]`, `[BODY].path`, `len([BODY]...)`: the response body.
    Body,
    /// `[CONNECTED]`: whether a connection was made.
    Connected,
    /// `[CERTIFICATE_EXPIRATION]`: time left on the served certificate.
    CertificateExpiration,
}

impl Placeholder {
    /// The placeholder as written, e.g. `[STATUS]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placeholder::Status => "[STATUS]",
            Placeholder::ResponseTime => "[RESPONSE_TIME]",
            Placeholder::Body => "[BODY]",
            Placeholder::Connected => "[CONNECTED]",
            Placeholder::CertificateExpiration => "[CERTIFICATE_EXPIRATION]",
        }
    }

    fn is_time(self) -> bool {
        matches!(
            self,
            Placeholder::ResponseTime | Placeholder::CertificateExpiration
        )
    }
}

const PLACEHOLDERS_HINT: &str =
    "use [STATUS], [RESPONSE_TIME], [BODY], [CONNECTED] or [CERTIFICATE_EXPIRATION]";

/// One step of a JSON path: `.key` or `[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Left {
    placeholder: Placeholder,
    /// JSON path into the body (only for [`Placeholder::Body`]).
    path: Vec<Seg>,
    /// Wrapped in `len(...)`.
    len: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }
}

/// A single value on the right, or inside `any(...)`.
#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Number(f64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Right {
    Atom(Atom),
    /// A duration as written (`72h`), with its value.
    Duration(std::time::Duration, String),
    /// `pat(...)`: a glob where `*` matches any run of characters.
    Pattern(String),
    /// `any(a, b, c)`.
    Any(Vec<Atom>),
}

impl Condition {
    /// The fact this condition looks at.
    pub fn placeholder(&self) -> Placeholder {
        self.left.placeholder
    }

    /// Whether this condition needs facts only an HTTP(S) response has
    /// (`[STATUS]`, `[BODY]`, `[CERTIFICATE_EXPIRATION]`): a `tcp://` target
    /// cannot answer it.
    pub fn uses_http_facts(&self) -> bool {
        matches!(
            self.left.placeholder,
            Placeholder::Status | Placeholder::Body | Placeholder::CertificateExpiration
        )
    }

    /// Whether this condition needs the served certificate (`https://` only).
    pub fn needs_certificate(&self) -> bool {
        self.left.placeholder == Placeholder::CertificateExpiration
    }

    /// Whether this condition needs the response body (so the check reads it).
    pub fn needs_body(&self) -> bool {
        self.left.placeholder == Placeholder::Body
    }

    /// Judge the facts. `Err` says, for a person, what failed and what was seen:
    /// `[STATUS] < 300 failed: [STATUS] was 503`.
    pub fn evaluate(&self, facts: &CheckFacts<'_>) -> Result<(), String> {
        let fail = |detail: String| Err(format!("{self} failed: {detail}"));
        let left_name = self.left.to_string();
        let value = match self.left_value(facts) {
            Ok(v) => v,
            Err(detail) => return fail(detail),
        };
        let holds = match (&self.right, self.op) {
            (Right::Atom(a), Op::Eq) => value.equals(a),
            (Right::Atom(a), Op::Ne) => !value.equals(a),
            (Right::Pattern(p), Op::Eq) => glob_match(p, &value.text()),
            (Right::Pattern(p), Op::Ne) => !glob_match(p, &value.text()),
            (Right::Any(items), Op::Eq) => items.iter().any(|a| value.equals(a)),
            (Right::Any(items), Op::Ne) => !items.iter().any(|a| value.equals(a)),
            (Right::Duration(d, _), Op::Eq) => value.number() == Some(millis(*d)),
            (Right::Duration(d, _), Op::Ne) => value.number() != Some(millis(*d)),
            (right, op) => {
                let r = match right {
                    Right::Atom(Atom::Number(n)) => *n,
                    Right::Duration(d, _) => millis(*d),
                    // The parser only lets numbers and durations reach here.
                    _ => return fail(format!("operator {} needs a number", op.as_str())),
                };
                let Some(l) = value.number() else {
                    return fail(format!(
                        "{left_name} was {} (not a number)",
                        value.describe()
                    ));
                };
                match op {
                    Op::Lt => l < r,
                    Op::Le => l <= r,
                    Op::Gt => l > r,
                    Op::Ge => l >= r,
                    Op::Eq | Op::Ne => unreachable_eq(l, r, op),
                }
            }
        };
        if holds {
            Ok(())
        } else {
            fail(format!("{left_name} was {}", value.describe()))
        }
    }

    fn left_value(&self, facts: &CheckFacts<'_>) -> Result<Value, String> {
        match self.left.placeholder {
            Placeholder::Status => match facts.status {
                Some(s) => Ok(Value::Number(f64::from(s), s.to_string())),
                None => Err("no HTTP status (no response)".into()),
            },
            Placeholder::ResponseTime => Ok(Value::Millis(millis(facts.response_time))),
            Placeholder::Connected => Ok(Value::Bool(facts.connected)),
            Placeholder::CertificateExpiration => match facts.certificate_expiration {
                Some(d) => Ok(Value::Remaining(d)),
                None => Err("no certificate (not https)".into()),
            },
            Placeholder::Body => {
                let Some(body) = facts.body else {
                    return Err("no response body".into());
                };
                if self.left.path.is_empty() {
                    let text = String::from_utf8_lossy(body);
                    let text = text.trim();
                    return Ok(if self.left.len {
                        let n = text.chars().count();
                        Value::Number(n as f64, n.to_string())
                    } else {
                        Value::Str(text.to_owned())
                    });
                }
                let json: serde_json::Value =
                    serde_json::from_slice(body).map_err(|_| "[BODY] is not JSON".to_owned())?;
                let mut cur = &json;
                for seg in &self.left.path {
                    let next = match seg {
                        Seg::Key(k) => cur.as_object().and_then(|o| o.get(k)),
                        Seg::Index(i) => cur.as_array().and_then(|a| a.get(*i)),
                    };
                    cur = next.ok_or_else(|| format!("{} not found", self.left.path_text()))?;
                }
                if self.left.len {
                    let n = match cur {
                        serde_json::Value::String(s) => s.chars().count(),
                        serde_json::Value::Array(a) => a.len(),
                        serde_json::Value::Object(o) => o.len(),
                        other => {
                            return Err(format!(
                                "{} is {}, not a string, array or object",
                                self.left.path_text(),
                                json_kind(other)
                            ));
                        }
                    };
                    Ok(Value::Number(n as f64, n.to_string()))
                } else {
                    Ok(Value::from_json(cur))
                }
            }
        }
    }
}

/// `==`/`!=` never reach the ordering branch; answer sensibly anyway.
fn unreachable_eq(l: f64, r: f64, op: Op) -> bool {
    (l == r) == (op == Op::Eq)
}

fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The value a placeholder resolved to.
#[derive(Debug, Clone)]
enum Value {
    /// A number and its text (`3`, `2.5`, `503`).
    Number(f64, String),
    /// `[RESPONSE_TIME]`, in milliseconds.
    Millis(f64),
    /// `[CERTIFICATE_EXPIRATION]`.
    Remaining(std::time::Duration),
    Bool(bool),
    Str(String),
    /// `null`, or an array or object as compact JSON.
    Json(String),
}

impl Value {
    fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) => Value::Number(f, n.to_string()),
                None => Value::Str(n.to_string()),
            },
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            other => Value::Json(other.to_string()),
        }
    }

    /// The scalar text the value compares by.
    fn text(&self) -> String {
        match self {
            Value::Number(_, t) => t.clone(),
            Value::Millis(ms) => format_number(*ms),
            Value::Remaining(d) => format_number(millis(*d)),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) | Value::Json(s) => s.clone(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n, _) => Some(*n),
            Value::Millis(ms) => Some(*ms),
            Value::Remaining(d) => Some(millis(*d)),
            Value::Str(s) => parse_number(s.trim()),
            Value::Bool(_) | Value::Json(_) => None,
        }
    }

    fn equals(&self, atom: &Atom) -> bool {
        match (self, atom) {
            (Value::Bool(a), Atom::Bool(b)) => a == b,
            (_, Atom::Number(b)) => match self.number() {
                Some(a) => a == *b,
                None => self.text() == format_number(*b),
            },
            (_, Atom::Bool(b)) => self.text() == b.to_string(),
            (_, Atom::Str(s)) => self.text() == *s,
        }
    }

    /// The value for a failure message.
    fn describe(&self) -> String {
        let text = match self {
            Value::Millis(ms) => format!("{}ms", ms.round()),
            Value::Remaining(d) => {
                let secs = d.as_secs();
                if secs == 0 {
                    "0s (expired)".to_owned()
                } else {
                    crate::duration::Duration::from_secs(secs).to_string()
                }
            }
            Value::Str(s) if s.is_empty() => "empty".to_owned(),
            other => other.text(),
        };
        truncate(&text, 120)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A plain decimal number: `-12`, `3.5`, `1e3`. Rejects `inf`, `NaN`, `0x10`.
fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The shortest text that parses back to `n` (`300`, `0.5`).
fn format_number(n: f64) -> String {
    format!("{n}")
}

/// `*` matches any run of characters (including none); everything else is literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

// ---------------------------------------------------------------- parsing

impl FromStr for Condition {
    type Err = ConditionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|reason| ConditionError {
            input: s.to_owned(),
            reason,
        })
    }
}

const SYNTAX_HINT: &str =
    "write LEFT OP RIGHT, e.g. `[STATUS] == 200`, with OP one of ==, !=, <, <=, >, >=";

fn parse(input: &str) -> Result<Condition, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(format!("it is empty; {SYNTAX_HINT}"));
    }
    let Some(at) = s.find(['=', '!', '<', '>']) else {
        return Err(format!("no comparison operator; {SYNTAX_HINT}"));
    };
    let rest = &s[at..];
    let (op, op_len) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
        (b'=', Some(b'=')) => (Op::Eq, 2),
        (b'!', Some(b'=')) => (Op::Ne, 2),
        (b'<', Some(b'=')) => (Op::Le, 2),
        (b'>', Some(b'=')) => (Op::Ge, 2),
        (b'<', _) => (Op::Lt, 1),
        (b'>', _) => (Op::Gt, 1),
        (b'=', _) => return Err("a single = is not an operator; use == to test equality".into()),
        _ => return Err("a lone ! is not an operator; use != to test inequality".into()),
    };
    let left_text = s[..at].trim();
    let right_text = rest[op_len..].trim();
    if left_text.is_empty() {
        return Err(format!(
            "nothing on the left of {}; {SYNTAX_HINT}",
            op.as_str()
        ));
    }
    if right_text.is_empty() {
        return Err(format!(
            "nothing on the right of {}; {SYNTAX_HINT}",
            op.as_str()
        ));
    }
    if right_text.starts_with(['=', '<', '>', '!']) {
        let bad: String = rest[..op_len]
            .chars()
            .chain(right_text.chars().take_while(|c| "=<>!".contains(*c)))
            .collect();
        return Err(format!(
            "unknown operator {bad}; use ==, !=, <, <=, > or >= (quote the right side if it starts with one of =<>!)"
        ));
    }
    let left = parse_left(left_text)?;
    let right = parse_right(right_text, &left)?;
    check(&left, op, &right)?;
    Ok(Condition { left, op, right })
}

fn parse_left(s: &str) -> Result<Left, String> {
    if let Some(inner) = strip_call(s, "len") {
        let inner = parse_left(inner.trim())?;
        if inner.len {
            return Err("len(len(...)) makes no sense; use len([BODY]) or len([BODY].path)".into());
        }
        if inner.placeholder != Placeholder::Body {
            return Err(format!(
                "len() works on [BODY] or [BODY].path, not {}",
                inner.placeholder.as_str()
            ));
        }
        return Ok(Left { len: true, ..inner });
    }
    if let Some(name) = s
        .split('(')
        .next()
        .filter(|n| s.contains('(') && !n.is_empty())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "unknown function {name}(); only len([BODY]) or len([BODY].path) works on the left"
        ));
    }
    if !s.starts_with('[') {
        return Err(format!(
            "the left side {s:?} is not a placeholder; {PLACEHOLDERS_HINT} (with [BODY].path for JSON)"
        ));
    }
    let Some(close) = s.find(']') else {
        return Err(format!("placeholder {s} lacks its closing ]"));
    };
    let name = &s[1..close];
    let rest = &s[close + 1..];
    let placeholder = match name {
        "STATUS" => Placeholder::Status,
        "RESPONSE_TIME" => Placeholder::ResponseTime,
        "BODY" => Placeholder::Body,
        "CONNECTED" => Placeholder::Connected,
        "CERTIFICATE_EXPIRATION" => Placeholder::CertificateExpiration,
        _ => {
            let upper = name.to_ascii_uppercase();
            let hint = if [
                "STATUS",
                "RESPONSE_TIME",
                "BODY",
                "CONNECTED",
                "CERTIFICATE_EXPIRATION",
            ]
            .contains(&upper.as_str())
            {
                format!("placeholders are upper case: [{upper}]")
            } else {
                PLACEHOLDERS_HINT.to_owned()
            };
            return Err(format!("unknown placeholder [{name}]; {hint}"));
        }
    };
    let path = if rest.is_empty() {
        Vec::new()
    } else if placeholder == Placeholder::Body {
        parse_path(rest)?
    } else {
        return Err(format!(
            "{} takes no path ({rest:?}); only [BODY] does, as in [BODY].status",
            placeholder.as_str()
        ));
    };
    Ok(Left {
        placeholder,
        path,
        len: false,
    })
}

/// `.a.b[0].c` after `[BODY]`.
fn parse_path(mut rest: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err("empty key in the [BODY] path; write it like [BODY].a.b[0].c".into());
            }
            segs.push(Seg::Key(key.to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Err("unclosed [ in the [BODY] path; write an index like [0]".into());
            };
            let idx = r[..end].trim();
            let i: usize = idx.parse().map_err(|_| {
                format!(
                    "[{idx}] in the [BODY] path is not an index; use a number like [0], or .key for an object key"
                )
            })?;
            segs.push(Seg::Index(i));
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "unexpected {rest:?} in the [BODY] path; write it like [BODY].a.b[0].c"
            ));
        }
    }
    Ok(segs)
}

/// `name(inner)` → `inner`.
fn strip_call<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn parse_right(s: &str, left: &Left) -> Result<Right, String> {
    if let Some(inner) = strip_call(s, "pat") {
        return Ok(Right::Pattern(unquote_or_bare(inner.trim())?));
    }
    if let Some(inner) = strip_call(s, "any") {
        let items = split_list(inner)?;
        if items.is_empty() {
            return Err("any() needs at least one value, as in any(200, 204)".into());
        }
        let atoms = items
            .into_iter()
            .map(|(text, quoted)| atom(&text, quoted))
            .collect();
        return Ok(Right::Any(atoms));
    }
    if s.starts_with('"') {
        let (text, rest) = read_quoted(s)?;
        if !rest.trim().is_empty() {
            return Err(format!(
                "unexpected {:?} after the quoted string",
                rest.trim()
            ));
        }
        return Ok(Right::Atom(Atom::Str(text)));
    }
    if left.placeholder.is_time()
        && !left.len
        && parse_number(s).is_none()
        && let Ok(d) = crate::duration::Duration::parse_unbounded(s)
    {
        return Ok(Right::Duration(d.std(), s.to_owned()));
    }
    Ok(Right::Atom(atom(s, false)))
}

fn atom(text: &str, quoted: bool) -> Atom {
    if quoted {
        return Atom::Str(text.to_owned());
    }
    match text {
        "true" => Atom::Bool(true),
        "false" => Atom::Bool(false),
        _ => match parse_number(text) {
            Some(n) => Atom::Number(n),
            None => Atom::Str(text.to_owned()),
        },
    }
}

/// Reads `"..."` at the start of `s` (with `\"` and `\\` escapes); returns the
/// text and what follows.
fn read_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(format!("unclosed quote in {s}"))
}

fn unquote_or_bare(s: &str) -> Result<String, String> {
    if s.starts_with('"') {
        let (text, rest) = read_quoted(s)?;
        if rest.trim().is_empty() {
            return Ok(text);
        }
        return Err(format!(
            "unexpected {:?} after the quoted string",
            rest.trim()
        ));
    }
    Ok(s.to_owned())
}

/// `a, "b, c", d` → `[(a, false), (b, c, true), (d, false)]`.
fn split_list(s: &str) -> Result<Vec<(String, bool)>, String> {
    let mut items = Vec::new();
    let mut rest = s.trim();
    if rest.is_empty() {
        return Ok(items);
    }
    loop {
        let (item, quoted, after) = if rest.starts_with('"') {
            let (text, after) = read_quoted(rest)?;
            (text, true, after.trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            (rest[..end].trim().to_owned(), false, &rest[end..])
        };
        if !quoted && item.is_empty() {
            return Err("empty value in any(); write it like any(200, 204)".into());
        }
        items.push((item, quoted));
        if after.is_empty() {
            return Ok(items);
        }
        let Some(next) = after.strip_prefix(',') else {
            return Err(format!("expected , in any() before {after:?}"));
        };
        rest = next.trim_start();
        if rest.is_empty() {
            return Err("trailing , in any()".into());
        }
    }
}

/// Which right sides make sense for which left side and operator.
fn check(left: &Left, op: Op, right: &Right) -> Result<(), String> {
    let name = left.to_string();
    if !op.is_equality() {
        match right {
            Right::Atom(Atom::Number(_)) | Right::Duration(..) => {}
            Right::Pattern(_) | Right::Any(_) => {
                return Err(format!(
                    "pat() and any() only work with == or !=, not {}",
                    op.as_str()
                ));
            }
            _ if left.placeholder.is_time() && !left.len => {
                return Err(format!(
                    "operator {} needs a number (milliseconds) or a duration like 500ms on the right",
                    op.as_str()
                ));
            }
            _ => {
                return Err(format!(
                    "operator {} needs a number on the right",
                    op.as_str()
                ));
            }
        }
    }
    if left.len {
        return match right {
            Right::Atom(Atom::Number(_)) => Ok(()),
            Right::Any(items) if items.iter().all(|a| matches!(a, Atom::Number(_))) => Ok(()),
            _ => Err(format!(
                "{name} is a length; compare it with a number, as in {name} > 0"
            )),
        };
    }
    match left.placeholder {
        Placeholder::Status => {
            let ok = match right {
                Right::Atom(Atom::Number(_)) | Right::Pattern(_) => true,
                Right::Any(items) => items.iter().all(|a| matches!(a, Atom::Number(_))),
                _ => false,
            };
            if !ok {
                return Err(
                    "[STATUS] is a number; compare it with a code like 200, any(200, 204) or pat(2*)"
                        .into(),
                );
            }
        }
        Placeholder::ResponseTime | Placeholder::CertificateExpiration => {
            if !matches!(right, Right::Atom(Atom::Number(_)) | Right::Duration(..)) {
                return Err(format!(
                    "{name} is a duration; compare it with milliseconds like 500 or a duration like 500ms or 72h"
                ));
            }
        }
        Placeholder::Connected => {
            if !matches!(right, Right::Atom(Atom::Bool(_))) {
                return Err("[CONNECTED] is true or false; write [CONNECTED] == true".into());
            }
        }
        Placeholder::Body => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- display

impl Left {
    fn path_text(&self) -> String {
        let mut s = String::from(self.placeholder.as_str());
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => {
                    s.push_str(&format!("[{i}]"));
                }
            }
        }
        s
    }
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len {
            write!(f, "len({})", self.path_text())
        } else {
            f.write_str(&self.path_text())
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A string as written on the right: bare when that reads back the same.
fn display_str(s: &str, left: &Left, in_list: bool) -> String {
    let needs_quotes = s.is_empty()
        || s.trim() != s
        || s.contains('"')
        || s.starts_with(['=', '<', '>', '!'])
        || (in_list && s.contains(','))
        || !matches!(atom(s, false), Atom::Str(_))
        || (left.placeholder.is_time() && crate::duration::Duration::parse_unbounded(s).is_ok())
        || strip_call(s, "pat").is_some()
        || strip_call(s, "any").is_some();
    if needs_quotes { quote(s) } else { s.to_owned() }
}

fn display_atom(a: &Atom, left: &Left, in_list: bool) -> String {
    match a {
        Atom::Number(n) => format_number(*n),
        Atom::Bool(b) => b.to_string(),
        Atom::Str(s) => display_str(s, left, in_list),
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.left, self.op.as_str())?;
        match &self.right {
            Right::Atom(a) => f.write_str(&display_atom(a, &self.left, false)),
            Right::Duration(_, text) => f.write_str(text),
            Right::Pattern(p) => {
                let needs_quote = p.trim() != p || p.starts_with('"') || p.contains(')');
                if needs_quote {
                    write!(f, "pat({})", quote(p))
                } else {
                    write!(f, "pat({p})")
                }
            }
            Right::Any(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|a| display_atom(a, &self.left, true))
                    .collect();
                write!(f, "any({})", parts.join(", "))
            }
        }
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Condition".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A condition `LEFT OP RIGHT` such as `[STATUS] == 200`, `[RESPONSE_TIME] < 500`, `[BODY].status == UP`, `len([BODY].items) > 0`, `[CONNECTED] == true`, `[CERTIFICATE_EXPIRATION] > 72h`. OP is one of ==, !=, <, <=, >, >=; the right side may also be pat(*glob*) or any(a, b).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as StdDuration;

    fn c(s: &str) -> Condition {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match s.parse::<Condition>() {
            Ok(c) => panic!("{s:?} should be rejected, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn http(status: u16, body: &str) -> CheckFacts<'_> {
        CheckFacts {
            status: Some(status),
            response_time: StdDuration::from_millis(120),
            body: Some(body.as_bytes()),
            connected: true,
            certificate_expiration: None,
        }
    }

    #[test]
    fn parses_every_placeholder() {
        assert_eq!(c("[STATUS] == 200").placeholder(), Placeholder::Status);
        assert_eq!(
            c("[RESPONSE_TIME] < 500").placeholder(),
            Placeholder::ResponseTime
        );
        assert_eq!(c("[BODY] == OK").placeholder(), Placeholder::Body);
        assert_eq!(c("[BODY].a.b[0].c == x").placeholder(), Placeholder::Body);
        assert_eq!(c("len([BODY].items) > 0").placeholder(), Placeholder::Body);
        assert_eq!(
            c("[CONNECTED] == true").placeholder(),
            Placeholder::Connected
        );
        assert_eq!(
            c("[CERTIFICATE_EXPIRATION] > 72h").placeholder(),
            Placeholder::CertificateExpiration
        );
    }

    #[test]
    fn display_is_canonical() {
        for (input, canonical) in [
            ("[STATUS]==200", "[STATUS] == 200"),
            ("  [STATUS]   <   300 ", "[STATUS] < 300"),
            ("[STATUS] == 200.0", "[STATUS] == 200"),
            ("[BODY].status == \"UP\"", "[BODY].status == UP"),
            (
                "[BODY].status == \"two words\"",
                "[BODY].status == two words",
            ),
            ("[BODY].flag == \"true\"", "[BODY].flag == \"true\""),
            ("[BODY].n == \"3\"", "[BODY].n == \"3\""),
            ("[BODY].s == \" pad \"", "[BODY].s == \" pad \""),
            ("[BODY].s == \"\"", "[BODY].s == \"\""),
            ("[BODY][0].x==1", "[BODY][0].x == 1"),
            ("len( [BODY].items )>=1", "len([BODY].items) >= 1"),
            (
                "[CERTIFICATE_EXPIRATION]>72h",
                "[CERTIFICATE_EXPIRATION] > 72h",
            ),
            ("[RESPONSE_TIME] < 1h30m", "[RESPONSE_TIME] < 1h30m"),
            (
                "[STATUS] == any(200,204 , 301)",
                "[STATUS] == any(200, 204, 301)",
            ),
            (
                "[BODY].s == any(a, \"b, c\", \"true\", 1)",
                "[BODY].s == any(a, \"b, c\", \"true\", 1)",
            ),
            ("[BODY] == pat(*UP*)", "[BODY] == pat(*UP*)"),
            ("[BODY] != pat(\" x*\")", "[BODY] != pat(\" x*\")"),
            (
                "[BODY].q == \"say \\\"hi\\\"\"",
                "[BODY].q == \"say \\\"hi\\\"\"",
            ),
            ("[BODY].e == \"==x\"", "[BODY].e == \"==x\""),
        ] {
            let parsed = c(input);
            assert_eq!(parsed.to_string(), canonical, "display of {input:?}");
            let again = c(&parsed.to_string());
            assert_eq!(again, parsed, "round trip of {input:?}");
        }
    }

    #[test]
    fn serde_round_trip_as_string() {
        let cond = c("[BODY].status==UP");
        let json = serde_json::to_string(&cond).unwrap();
        assert_eq!(json, "\"[BODY].status == UP\"");
        let back: Condition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cond);
        let bad = serde_json::from_str::<Condition>("\"[STATU] == 1\"").unwrap_err();
        assert!(bad.to_string().contains("unknown placeholder"), "{bad}");
    }

    #[test]
    fn parse_errors_are_actionable() {
        let e = err("[STATU] == 200");
        assert!(
            e.contains("unknown placeholder [STATU]; use [STATUS], [RESPONSE_TIME], [BODY], [CONNECTED] or [CERTIFICATE_EXPIRATION]"),
            "{e}"
        );
        assert!(err("[status] == 200").contains("[STATUS]"));
        assert!(err("[BODY].status < UP").contains("operator < needs a number on the right"));
        assert!(err("[RESPONSE_TIME] < fast").contains("duration like 500ms"));
        assert!(err("[STATUS] = 200").contains("use =="));
        assert!(err("[STATUS] ! 200").contains("use !="));
        assert!(err("[STATUS] === 200").contains("unknown operator ==="));
        assert!(err("[STATUS] 200").contains("no comparison operator"));
        assert!(err("").contains("empty"));
        assert!(err("[STATUS] ==").contains("nothing on the right"));
        assert!(err("== 200").contains("nothing on the left"));
        assert!(err("STATUS == 200").contains("not a placeholder"));
        assert!(err("[STATUS == 200").contains("closing ]"));
        assert!(err("[STATUS].x == 1").contains("takes no path"));
        assert!(err("[BODY].a..b == 1").contains("empty key"));
        assert!(err("[BODY].a[x] == 1").contains("not an index"));
        assert!(err("[BODY].a[0 == 1").contains("unclosed ["));
        assert!(err("[BODY]status == 1").contains("unexpected"));
        assert!(err("len([STATUS]) > 1").contains("len() works on [BODY]"));
        assert!(err("has([BODY].x) == true").contains("unknown function has()"));
        assert!(err("len([BODY]) > many").contains("needs a number"));
        assert!(err("len([BODY]) == many").contains("is a length"));
        assert!(err("[STATUS] == OK").contains("[STATUS] is a number"));
        assert!(err("[STATUS] == any(200, ok)").contains("[STATUS] is a number"));
        assert!(err("[CONNECTED] == yes").contains("[CONNECTED] == true"));
        assert!(err("[CONNECTED] > 1").contains("[CONNECTED] == true"));
        assert!(err("[CERTIFICATE_EXPIRATION] == \"x\"").contains("is a duration"));
        assert!(err("[BODY] < pat(*x*)").contains("only work with == or !="));
        assert!(err("[STATUS] >= any(200, 300)").contains("only work with == or !="));
        assert!(err("[STATUS] == any()").contains("at least one value"));
        assert!(err("[STATUS] == any(200,,201)").contains("empty value"));
        assert!(err("[STATUS] == any(200,)").contains("trailing ,"));
        assert!(err("[BODY] == \"open").contains("unclosed quote"));
        assert!(err("[BODY] == \"a\" b").contains("after the quoted string"));
        assert!(err("[BODY] == any(\"a\" b)").contains("expected ,"));
        assert!(err("[STATUS] < inf").contains("needs a number"));
    }

    #[test]
    fn status_comparisons() {
        let f = http(503, "");
        assert_eq!(
            c("[STATUS] < 300").evaluate(&f).unwrap_err(),
            "[STATUS] < 300 failed: [STATUS] was 503"
        );
        assert!(c("[STATUS] >= 500").evaluate(&f).is_ok());
        assert!(c("[STATUS] == 503").evaluate(&f).is_ok());
        assert!(c("[STATUS] != 200").evaluate(&f).is_ok());
        assert!(c("[STATUS] <= 503").evaluate(&f).is_ok());
        assert!(c("[STATUS] > 503").evaluate(&f).is_err());
        assert!(c("[STATUS] == any(500, 503)").evaluate(&f).is_ok());
        assert!(c("[STATUS] != any(500, 503)").evaluate(&f).is_err());
        assert!(c("[STATUS] == pat(5*)").evaluate(&f).is_ok());
        assert!(c("[STATUS] == pat(2*)").evaluate(&f).is_err());
        let none = CheckFacts::default();
        let e = c("[STATUS] == 200").evaluate(&none).unwrap_err();
        assert!(
            e.starts_with("[STATUS] == 200 failed: no HTTP status"),
            "{e}"
        );
    }

    #[test]
    fn response_time_in_millis_or_duration() {
        let f = http(200, ""); // 120ms
        assert!(c("[RESPONSE_TIME] < 500").evaluate(&f).is_ok());
        assert!(c("[RESPONSE_TIME] < 500ms").evaluate(&f).is_ok());
        assert!(c("[RESPONSE_TIME] < 1s").evaluate(&f).is_ok());
        assert!(c("[RESPONSE_TIME] > 100").evaluate(&f).is_ok());
        assert!(c("[RESPONSE_TIME] >= 120ms").evaluate(&f).is_ok());
        assert!(c("[RESPONSE_TIME] == 120").evaluate(&f).is_ok());
        assert_eq!(
            c("[RESPONSE_TIME] < 100ms").evaluate(&f).unwrap_err(),
            "[RESPONSE_TIME] < 100ms failed: [RESPONSE_TIME] was 120ms"
        );
        assert!(c("[RESPONSE_TIME] < 0.5").evaluate(&f).is_err());
    }

    #[test]
    fn certificate_expiration() {
        let mut f = http(200, "");
        let e = c("[CERTIFICATE_EXPIRATION] > 72h")
            .evaluate(&f)
            .unwrap_err();
        assert_eq!(
            e,
            "[CERTIFICATE_EXPIRATION] > 72h failed: no certificate (not https)"
        );
        f.certificate_expiration = Some(StdDuration::from_secs(10 * 86400));
        assert!(c("[CERTIFICATE_EXPIRATION] > 72h").evaluate(&f).is_ok());
        assert!(c("[CERTIFICATE_EXPIRATION] > 7d").evaluate(&f).is_ok());
        assert!(
            c("[CERTIFICATE_EXPIRATION] > 864000001")
                .evaluate(&f)
                .is_err()
        );
        f.certificate_expiration = Some(StdDuration::from_secs(2 * 86400 + 3600));
        assert_eq!(
            c("[CERTIFICATE_EXPIRATION] > 72h")
                .evaluate(&f)
                .unwrap_err(),
            "[CERTIFICATE_EXPIRATION] > 72h failed: [CERTIFICATE_EXPIRATION] was 2d1h"
        );
        f.certificate_expiration = Some(StdDuration::ZERO);
        let e = c("[CERTIFICATE_EXPIRATION] > 1d").evaluate(&f).unwrap_err();
        assert!(e.ends_with("was 0s (expired)"), "{e}");
    }

    #[test]
    fn connected() {
        let mut f = http(200, "");
        assert!(c("[CONNECTED] == true").evaluate(&f).is_ok());
        assert!(c("[CONNECTED] != false").evaluate(&f).is_ok());
        f.connected = false;
        assert_eq!(
            c("[CONNECTED] == true").evaluate(&f).unwrap_err(),
            "[CONNECTED] == true failed: [CONNECTED] was false"
        );
        assert!(c("[CONNECTED] == false").evaluate(&f).is_ok());
    }

    #[test]
    fn whole_body() {
        let f = http(200, "pong\n");
        assert!(c("[BODY] == pong").evaluate(&f).is_ok());
        assert!(c("[BODY] == pat(p*g)").evaluate(&f).is_ok());
        assert!(c("[BODY] != pat(*x*)").evaluate(&f).is_ok());
        assert!(c("len([BODY]) == 4").evaluate(&f).is_ok());
        assert_eq!(
            c("[BODY] == ping").evaluate(&f).unwrap_err(),
            "[BODY] == ping failed: [BODY] was pong"
        );
        let empty = http(200, "");
        assert_eq!(
            c("[BODY] == x").evaluate(&empty).unwrap_err(),
            "[BODY] == x failed: [BODY] was empty"
        );
        let long = "y".repeat(500);
        let e = c("[BODY] == x").evaluate(&http(200, &long)).unwrap_err();
        assert!(e.len() < 200 && e.ends_with('…'), "{e}");
        let no_body = CheckFacts::default();
        assert!(
            c("[BODY] == x")
                .evaluate(&no_body)
                .unwrap_err()
                .ends_with("no response body")
        );
    }

    #[test]
    fn json_paths() {
        let body = r#"{"status":"UP","count":3,"ratio":0.5,"ok":true,"none":null,
            "a":{"b":[{"c":"deep"},{"c":"deeper"}]},"items":[1,2,3],"name":"héllo","n":"42"}"#;
        let f = http(200, body);
        for ok in [
            "[BODY].status == UP",
            "[BODY].status == \"UP\"",
            "[BODY].status != DOWN",
            "[BODY].count == 3",
            "[BODY].count == 3.0",
            "[BODY].count > 2",
            "[BODY].count <= 3",
            "[BODY].ratio < 1",
            "[BODY].ratio == 0.5",
            "[BODY].ok == true",
            "[BODY].ok != false",
            "[BODY].none == null",
            "[BODY].a.b[0].c == deep",
            "[BODY].a.b[1].c == pat(dee*r)",
            "[BODY].items[2] == 3",
            "[BODY].status == any(UP, HEALTHY)",
            "[BODY].count == any(1, 3)",
            "len([BODY].items) == 3",
            "len([BODY].a) == 1",
            "len([BODY].name) == 5",
            "len([BODY].a.b) >= 2",
            "[BODY].n > 41",
            "[BODY].n == 42",
            "[BODY].items == \"[1,2,3]\"",
        ] {
            assert!(c(ok).evaluate(&f).is_ok(), "{ok}: {:?}", c(ok).evaluate(&f));
        }
        assert_eq!(
            c("[BODY].status == DOWN").evaluate(&f).unwrap_err(),
            "[BODY].status == DOWN failed: [BODY].status was UP"
        );
        assert_eq!(
            c("[BODY].a.x == 1").evaluate(&f).unwrap_err(),
            "[BODY].a.x == 1 failed: [BODY].a.x not found"
        );
        assert_eq!(
            c("[BODY].items[9] == 1").evaluate(&f).unwrap_err(),
            "[BODY].items[9] == 1 failed: [BODY].items[9] not found"
        );
        assert!(
            c("[BODY].status[0] == 1")
                .evaluate(&f)
                .unwrap_err()
                .ends_with("[BODY].status[0] not found")
        );
        assert_eq!(
            c("[BODY].status > 3").evaluate(&f).unwrap_err(),
            "[BODY].status > 3 failed: [BODY].status was UP (not a number)"
        );
        assert_eq!(
            c("len([BODY].count) > 3").evaluate(&f).unwrap_err(),
            "len([BODY].count) > 3 failed: [BODY].count is a number, not a string, array or object"
        );
        assert_eq!(
            c("len([BODY].items) > 3").evaluate(&f).unwrap_err(),
            "len([BODY].items) > 3 failed: len([BODY].items) was 3"
        );
        let not_json = http(200, "<html>");
        assert_eq!(
            c("[BODY].status == UP").evaluate(&not_json).unwrap_err(),
            "[BODY].status == UP failed: [BODY] is not JSON"
        );
        let top_array = http(200, r#"[{"id":7}]"#);
        assert!(c("[BODY][0].id == 7").evaluate(&top_array).is_ok());
        assert!(c("len([BODY]) == 10").evaluate(&top_array).is_ok());
    }

    #[test]
    fn needs_and_kinds() {
        assert!(c("[BODY] == x").needs_body());
        assert!(c("len([BODY].a) > 0").needs_body());
        assert!(!c("[STATUS] == 200").needs_body());
        assert!(c("[STATUS] == 200").uses_http_facts());
        assert!(c("[BODY].a == 1").uses_http_facts());
        assert!(c("[CERTIFICATE_EXPIRATION] > 1d").uses_http_facts());
        assert!(c("[CERTIFICATE_EXPIRATION] > 1d").needs_certificate());
        assert!(!c("[CONNECTED] == true").uses_http_facts());
        assert!(!c("[RESPONSE_TIME] < 10").uses_http_facts());
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "abc"));
        assert!(glob_match("a*c", "abc"));
        assert!(glob_match("a*c", "ac"));
        assert!(glob_match("*b*", "abc"));
        assert!(glob_match("a**", "a"));
        assert!(glob_match("*aab", "aaab"));
        assert!(!glob_match("a*c", "abd"));
        assert!(!glob_match("abc", "abcd"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("é*", "éa"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("3"), Some(3.0));
        assert_eq!(parse_number("-3.5"), Some(-3.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        for bad in ["", "-", "inf", "NaN", "1e", "0x10", "1.2.3", "3 ", "e5"] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_parsed_condition_round_trips(
            left in proptest::sample::select(vec![
                "[STATUS]", "[RESPONSE_TIME]", "[BODY]", "[BODY].a[0].b", "len([BODY].x)",
                "[CONNECTED]", "[CERTIFICATE_EXPIRATION]",
            ]),
            op in proptest::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
            right in r#"[ -~]{0,12}"#,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let input = format!("{left} {op} {right}");
            if let Ok(cond) = input.parse::<Condition>() {
                let shown = cond.to_string();
                let again: Condition = shown.parse().unwrap();
                proptest::prop_assert_eq!(&again, &cond);
                proptest::prop_assert_eq!(again.to_string(), shown);
                let facts = CheckFacts { body: Some(&body), ..Default::default() };
                let _ = cond.evaluate(&facts);
            }
        }
    }
}
