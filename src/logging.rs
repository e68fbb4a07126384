//! Log output: where it goes, how it is filtered, and its format.
//!
//! Logs always go to stderr: stdout is the MCP channel under `--mcp-stdio`.
//! Colour codes are written only when stderr is a terminal (and `NO_COLOR` is
//! unset), so a file, a pipe or a container runtime's log driver gets plain
//! text. `MAINTENANT_LOG_FORMAT=json` writes one JSON object per line for log
//! pipelines (Kubernetes, Loki, ...).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How each log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`), and the span in force.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" | "pretty" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "MAINTENANT_LOG_FORMAT={other:?}: expected `text` or `json`"
            )),
        }
    }
}

/// The filter: `MAINTENANT_LOG`, else `RUST_LOG` (what users of Rust tools
/// reach for first), else `info`. An unparsable directive is an error rather
/// than a silent `info`, so a typo does not hide the logs someone asked for.
fn filter() -> Result<EnvFilter, String> {
    for var in ["MAINTENANT_LOG", "RUST_LOG"] {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => {
                return EnvFilter::try_new(&v).map_err(|e| format!("{var}={v:?}: {e}"));
            }
            _ => {}
        }
    }
    Ok(EnvFilter::new("info"))
}

/// Install the global subscriber from the environment. Errors name the
/// variable at fault; the caller prints them and exits.
pub fn init() -> Result<(), String> {
    let format: LogFormat = std::env::var("MAINTENANT_LOG_FORMAT")
        .unwrap_or_default()
        .parse()?;
    let filter = filter()?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" JSON ".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!("".parse::<LogFormat>(), Ok(LogFormat::Text));
        let e = "xml".parse::<LogFormat>().unwrap_err();
        assert!(
            e.contains("MAINTENANT_LOG_FORMAT") && e.contains("json"),
            "{e}"
        );
    }
}
