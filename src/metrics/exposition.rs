//! The text formats a scraper reads: Prometheus text exposition 0.0.4 and
//! OpenMetrics 1.0 text. One writer for both; the differences (a counter's
//! family name, the info type, the closing `# EOF`) are handled here so the
//! collectors write each sample once.
//!
//! Output goes into a `String` that is handed to a [`Sink`] in chunks, so a
//! scrape of 10k monitors is streamed, not built whole in memory.

use std::fmt::Write as _;

/// Which text format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the scraper's `Accept` lists it (Prometheus 2.x does,
    /// first); the classic text format otherwise. A media range with `q=0`
    /// is a refusal, not a preference.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants_om = accept.is_some_and(|a| {
            a.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !parts.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants_om {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// The family is named with its `_total` sample name; OpenMetrics drops
    /// the suffix from the `# TYPE` line.
    Counter,
    Histogram,
    /// A constant 1 with labels that describe (`maintenant_build_info`); a
    /// gauge in the classic format, `info` in OpenMetrics (named without `_info`).
    Info,
}

/// A sample's value. Integers are written exactly; floats in the formats'
/// spelling (`+Inf`, `-Inf`, `NaN`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Float(v as f64)
    }
}

/// Where finished chunks go. `false` means the reader is gone: the writer
/// then stops writing (a scraper that hung up costs no more work).
pub trait Sink {
    fn send(&mut self, chunk: String) -> bool;
}

/// Collects every chunk (tests, and callers that want the whole text).
impl Sink for Vec<String> {
    fn send(&mut self, chunk: String) -> bool {
        self.push(chunk);
        true
    }
}

/// Labels as name/value pairs, borrowed: a sample costs no allocation.
pub type Labels<'a> = [(&'a str, &'a str)];

/// The writer. Call [`Writer::family`] once per family, then its samples,
/// then the next family; [`Writer::finish`] closes the text.
pub struct Writer<S: Sink> {
    format: Format,
    buf: String,
    chunk: usize,
    sink: S,
    closed: bool,
}

impl<S: Sink> Writer<S> {
    /// `chunk`: bytes after which the buffer is handed to the sink.
    pub fn new(format: Format, chunk: usize, sink: S) -> Self {
        Writer {
            format,
            // A sample line is at most a few hundred bytes.
            buf: String::with_capacity(chunk.saturating_add(1024).min(1 << 20)),
            chunk,
            sink,
            closed: false,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The reader hung up; further writes are dropped.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// `# HELP` and `# TYPE` of a family. `name` is the sample name (with
    /// `_total` for a counter, `_info` for an info).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        if self.closed {
            return;
        }
        debug_assert!(valid_name(name), "metric name {name:?}");
        let (family, type_name) = match (self.format, kind) {
            (_, Kind::Gauge) => (name, "gauge"),
            (_, Kind::Histogram) => (name, "histogram"),
            (Format::Prometheus, Kind::Counter) => (name, "counter"),
            (Format::OpenMetrics, Kind::Counter) => {
                (name.strip_suffix("_total").unwrap_or(name), "counter")
            }
            (Format::Prometheus, Kind::Info) => (name, "gauge"),
            (Format::OpenMetrics, Kind::Info) => {
                (name.strip_suffix("_info").unwrap_or(name), "info")
            }
        };
        self.buf.push_str("# HELP ");
        self.buf.push_str(family);
        self.buf.push(' ');
        escape_help(&mut self.buf, help, self.format);
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(family);
        self.buf.push(' ');
        self.buf.push_str(type_name);
        self.buf.push('\n');
    }

    /// One sample line: `name{labels,extra} value`.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &Labels<'_>,
        extra: &Labels<'_>,
        value: impl Into<Value>,
    ) {
        if self.closed {
            return;
        }
        self.buf.push_str(name);
        write_labels(&mut self.buf, labels, extra);
        self.buf.push(' ');
        write_value(&mut self.buf, value.into());
        self.buf.push('\n');
        self.maybe_flush();
    }

    /// A histogram's samples: cumulative `_bucket`s (`le` = each bound, then
    /// `+Inf` = the count), `_sum`, `_count`. `counts[i]` are the
    /// observations in bucket `i` alone (not cumulative); `bounds` and
    /// `counts` have the same length.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &Labels<'_>,
        bounds: &[&str],
        counts: &[u64],
        sum: f64,
        count: u64,
    ) {
        debug_assert_eq!(bounds.len(), counts.len());
        if self.closed {
            return;
        }
        let mut cumulative = 0u64;
        for (le, n) in bounds.iter().zip(counts) {
            cumulative = cumulative.saturating_add(*n);
            self.bucket(name, labels, le, cumulative.min(count));
        }
        self.bucket(name, labels, "+Inf", count);
        self.suffixed(name, "_sum", labels, Value::Float(sum));
        self.suffixed(name, "_count", labels, Value::Int(count));
        self.maybe_flush();
    }

    fn bucket(&mut self, name: &str, labels: &Labels<'_>, le: &str, n: u64) {
        self.buf.push_str(name);
        self.buf.push_str("_bucket");
        write_labels(&mut self.buf, labels, &[("le", le)]);
        self.buf.push(' ');
        write_value(&mut self.buf, Value::Int(n));
        self.buf.push('\n');
    }

    fn suffixed(&mut self, name: &str, suffix: &str, labels: &Labels<'_>, v: Value) {
        self.buf.push_str(name);
        self.buf.push_str(suffix);
        write_labels(&mut self.buf, labels, &[]);
        self.buf.push(' ');
        write_value(&mut self.buf, v);
        self.buf.push('\n');
    }

    fn maybe_flush(&mut self) {
        if self.buf.len() >= self.chunk {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.closed || self.buf.is_empty() {
            return;
        }
        let next = String::with_capacity(self.buf.capacity());
        let chunk = std::mem::replace(&mut self.buf, next);
        if !self.sink.send(chunk) {
            self.closed = true;
            self.buf = String::new();
        }
    }

    /// Close the text (OpenMetrics ends with `# EOF`), hand over the rest
    /// and return the sink.
    pub fn finish(mut self) -> S {
        if !self.closed && self.format == Format::OpenMetrics {
            self.buf.push_str("# EOF\n");
        }
        self.flush();
        self.sink
    }
}

fn write_labels(buf: &mut String, labels: &Labels<'_>, extra: &Labels<'_>) {
    if labels.is_empty() && extra.is_empty() {
        return;
    }
    buf.push('{');
    for (i, (k, v)) in labels.iter().chain(extra).enumerate() {
        debug_assert!(valid_label_name(k), "label name {k:?}");
        if i > 0 {
            buf.push(',');
        }
        buf.push_str(k);
        buf.push_str("=\"");
        escape_label_value(buf, v);
        buf.push('"');
    }
    buf.push('}');
}

/// Label values escape `\`, `"` and line feeds (the same in both formats).
pub fn escape_label_value(buf: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

/// `# HELP` text escapes `\` and line feeds; OpenMetrics escapes `"` too.
fn escape_help(buf: &mut String, v: &str, format: Format) {
    for c in v.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '"' if format == Format::OpenMetrics => buf.push_str("\\\""),
            c => buf.push(c),
        }
    }
}

fn write_value(buf: &mut String, v: Value) {
    match v {
        Value::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Value::Float(f) if f.is_nan() => buf.push_str("NaN"),
        Value::Float(f) if f == f64::INFINITY => buf.push_str("+Inf"),
        Value::Float(f) if f == f64::NEG_INFINITY => buf.push_str("-Inf"),
        // Display never uses an exponent and prints integral values without
        // a fraction: both formats read either.
        Value::Float(f) => {
            let _ = write!(buf, "{f}");
        }
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(n: &str) -> bool {
    valid_name(n) && !n.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(format: Format, f: impl FnOnce(&mut Writer<Vec<String>>)) -> String {
        let mut w = Writer::new(format, 64, Vec::new());
        f(&mut w);
        w.finish().concat()
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let out = text(Format::Prometheus, |w| {
            w.family("m", Kind::Gauge, "help");
            w.sample("m", &[("monitor", "a\\b\"c\nd")], &[], 1u64);
        });
        assert!(
            out.contains(r#"m{monitor="a\\b\"c\nd"} 1"#),
            "escaped value in {out}"
        );
        assert_eq!(out.lines().count(), 3, "the newline did not break the line");
    }

    #[test]
    fn help_escapes_per_format() {
        let p = text(Format::Prometheus, |w| {
            w.family("m", Kind::Gauge, "a \"b\"\\\nc")
        });
        assert!(p.starts_with("# HELP m a \"b\"\\\\\\nc\n"), "{p}");
        let o = text(Format::OpenMetrics, |w| {
            w.family("m", Kind::Gauge, "a \"b\"")
        });
        assert!(o.starts_with("# HELP m a \\\"b\\\"\n"), "{o}");
    }

    #[test]
    fn openmetrics_ends_with_eof_and_names_counters_without_total() {
        let body = |w: &mut Writer<Vec<String>>| {
            w.family("x_checks_total", Kind::Counter, "checks");
            w.sample("x_checks_total", &[("result", "up")], &[], 3u64);
            w.family("x_build_info", Kind::Info, "build");
            w.sample("x_build_info", &[("version", "1.0")], &[], 1u64);
        };
        let om = text(Format::OpenMetrics, body);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE x_checks counter\n"), "{om}");
        assert!(om.contains("x_checks_total{result=\"up\"} 3\n"), "{om}");
        assert!(om.contains("# TYPE x_build info\n"), "{om}");
        assert!(om.contains("x_build_info{version=\"1.0\"} 1\n"), "{om}");
        let prom = text(Format::Prometheus, body);
        assert!(!prom.contains("# EOF"), "{prom}");
        assert!(prom.contains("# TYPE x_checks_total counter\n"), "{prom}");
        assert!(prom.contains("# TYPE x_build_info gauge\n"), "{prom}");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf_sum_count() {
        let out = text(Format::Prometheus, |w| {
            w.family("d_seconds", Kind::Histogram, "durations");
            w.histogram(
                "d_seconds",
                &[("monitor", "api")],
                &["0.1", "1.0"],
                &[2, 3],
                4.5,
                6,
            );
        });
        let lines: Vec<&str> = out.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                r#"d_seconds_bucket{monitor="api",le="0.1"} 2"#,
                r#"d_seconds_bucket{monitor="api",le="1.0"} 5"#,
                r#"d_seconds_bucket{monitor="api",le="+Inf"} 6"#,
                r#"d_seconds_sum{monitor="api"} 4.5"#,
                r#"d_seconds_count{monitor="api"} 6"#,
            ]
        );
    }

    #[test]
    fn floats_use_the_formats_spelling() {
        let out = text(Format::Prometheus, |w| {
            w.sample("a", &[], &[], f64::INFINITY);
            w.sample("b", &[], &[], f64::NEG_INFINITY);
            w.sample("c", &[], &[], f64::NAN);
            w.sample("d", &[], &[], 1_700_000_000.25);
            w.sample("e", &[], &[], 3.0);
        });
        assert_eq!(out, "a +Inf\nb -Inf\nc NaN\nd 1700000000.25\ne 3\n");
    }

    #[test]
    fn output_is_chunked_and_a_closed_sink_stops_the_writer() {
        let mut w = Writer::new(Format::Prometheus, 100, Vec::new());
        for _ in 0..50 {
            w.sample("some_metric_name", &[("k", "v")], &[], 1u64);
        }
        let chunks = w.finish();
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        assert!(
            chunks.iter().all(|c| c.ends_with('\n')),
            "whole lines per chunk"
        );

        struct Gone(usize);
        impl Sink for Gone {
            fn send(&mut self, _: String) -> bool {
                self.0 += 1;
                false
            }
        }
        let mut w = Writer::new(Format::OpenMetrics, 10, Gone(0));
        for _ in 0..50 {
            w.sample("m", &[], &[], 1u64);
        }
        assert!(w.is_closed());
        assert_eq!(w.finish().0, 1, "nothing sent after the reader left");
    }

    #[test]
    fn accept_picks_openmetrics_only_when_asked() {
        let prometheus_2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus_2)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; q=0, text/plain")),
            Format::Prometheus
        );
    }
}
