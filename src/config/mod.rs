//! The monitors file: parsing (strict, with line and column), `${VAR}`
//! expansion, validation, directories of files, and the JSON Schema.

mod expand;
mod extra;
mod item_cache;
mod locate;
pub mod model;
mod probe;
pub(crate) mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::monitor::{DeclaredMonitor, MonitorSpec, Origin};
use locate::{Index, LineIndex, Pos};

/// One problem in a monitors file, located for the person who must fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A successfully loaded monitors file (or directory).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The files read, in the order they were merged.
    pub files: Vec<PathBuf>,
    pub monitors: Vec<DeclaredMonitor>,
    /// `alerting:` merged over the files.
    pub alerting: model::AlertingSpec,
}

/// Load a monitors file, or every `*.yaml` / `*.yml` file of a directory
/// (merged; a name declared twice is an error naming both places).
///
/// A directory is read non-recursively, its files sorted by name; hidden
/// entries and entries starting with `..` (the `..data` and `..2024_...`
/// entries of a mounted Kubernetes ConfigMap) are skipped, while plain
/// symlinks such as `x.yaml -> ..data/x.yaml` are followed. A `*.yaml` entry
/// that cannot be read as a file (a dangling link, a link loop, a directory
/// named `x.yaml`) is an error naming it, as an unreadable file is. A file
/// without content, or a directory without a `*.yaml` file, is an error too
/// ([`EMPTY_FILE`]): declaring no monitors is written `endpoints: []`.
/// `${VAR}` expands from the process environment.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    load_with(path, &mut LoadCache::default())
}

/// What a reload can reuse from the previous load of the same path: the
/// parsed endpoints of each file, by the text of their list item. A reload
/// that changes one monitor among 10k then parses one item, not the file.
#[derive(Default)]
pub struct LoadCache(HashMap<PathBuf, item_cache::ItemCache>);

/// [`load`], reusing what `cache` remembers and updating it.
pub fn load_with(path: &Path, cache: &mut LoadCache) -> Result<LoadedConfig, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let meta = std::fs::metadata(path).map_err(|e| ConfigErrors(vec![io_error(path, &e)]))?;
    let mut errors = Vec::new();
    let files = if meta.is_dir() {
        let files = list_dir(path, &mut errors)?;
        if files.is_empty() && errors.is_empty() {
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: EMPTY_DIR.to_owned(),
            });
        }
        files
    } else if meta.is_file() {
        vec![path.to_path_buf()]
    } else {
        // A FIFO or a device: reading it could block the reload for ever.
        return Err(ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: "is not a regular file".to_owned(),
        }]));
    };

    let mut alerting_parts = Vec::new();
    // Every monitor parsed, with the index of its file.
    let mut all: Vec<(usize, Parsed)> = Vec::new();
    for (f, file) in files.iter().enumerate() {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(io_error(file, &e));
                continue;
            }
        };
        let items = cache.0.entry(file.clone()).or_default();
        match parse_file(&text, file, &env, Some(items)) {
            Ok((parsed, alerting)) => {
                alerting_parts.push((file.clone(), alerting));
                all.extend(parsed.into_iter().map(|p| (f, p)));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    // A name declared twice (across files: a file's own duplicates were
    // reported by its parse) is reported at the second declaration.
    let mut first: HashMap<(crate::monitor::MonitorKind, &str), (usize, usize)> =
        HashMap::with_capacity(all.len());
    let mut duplicate = vec![false; all.len()];
    for (i, (f, p)) in all.iter().enumerate() {
        let spec = &p.monitor.spec;
        match first.entry((spec.kind(), spec.name())) {
            std::collections::hash_map::Entry::Occupied(at) => {
                let (first_file, first_line) = *at.get();
                duplicate[i] = true;
                errors.push(ConfigError {
                    file: files[*f].clone(),
                    line: p.item.line,
                    column: p.item.col,
                    message: format!(
                        "duplicate {} name {:?}: already declared at {}:{first_line}",
                        spec.kind(),
                        spec.name(),
                        files[first_file].display()
                    ),
                });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((*f, p.item.line));
            }
        }
    }
    drop(first);
    let mut monitors: Vec<DeclaredMonitor> = all
        .into_iter()
        .zip(duplicate)
        .filter(|(_, dup)| !dup)
        .map(|((_, p), _)| p.monitor)
        .collect();
    let alerting = extra::merge_alerting(alerting_parts, &mut errors);
    extra::check_channel_names(&monitors, &alerting, &mut errors);
    extra::derive_certificates(&mut monitors);
    // The collect above reuses the buffer of `all`, whose items are larger:
    // without this the declared set would keep that buffer (0.8 MB at 10k).
    monitors.shrink_to_fit();
    if errors.is_empty() {
        Ok(LoadedConfig {
            files,
            monitors,
            alerting,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The `*.yaml` / `*.yml` files of a directory, sorted by name. An entry
/// with such a name that is not a readable file is pushed to `errors`: it
/// is not skipped, since skipping it would silently stop its monitors.
fn list_dir(dir: &Path, errors: &mut Vec<ConfigError>) -> Result<Vec<PathBuf>, ConfigErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigErrors(vec![io_error(dir, &e)]))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ConfigErrors(vec![io_error(dir, &e)]))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_monitors_file_name(name) {
            continue;
        }
        let path = dir.join(name);
        // Follows symlinks: `x.yaml -> ..data/x.yaml` is a file.
        match entry_problem(&path) {
            None => files.push(path),
            Some(message) => errors.push(ConfigError {
                file: path,
                line: 0,
                column: 0,
                message,
            }),
        }
    }
    files.sort();
    errors.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(files)
}

/// Whether a directory entry's name is one of the monitors files a directory
/// is made of: `*.yaml` / `*.yml`, not hidden (so not `..data` either).
pub fn is_monitors_file_name(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("yaml" | "yml"))
}

/// Why a `*.yaml` entry of a directory cannot be read as a monitors file,
/// if it cannot: the message names what it is, so the fix is obvious.
fn entry_problem(path: &Path) -> Option<String> {
    let e = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => return None,
        Ok(m) if m.is_dir() => {
            return Some(
                "is a directory, not a monitors file (rename it or move it out of this folder)"
                    .to_owned(),
            );
        }
        // A FIFO or a device: reading it could block the reload for ever.
        Ok(_) => return Some("is not a regular file".to_owned()),
        Err(e) => e,
    };
    let link = std::fs::read_link(path).ok();
    Some(match (link, e.raw_os_error()) {
        (Some(_), Some(libc::ELOOP)) => "cannot read: symbolic link loop".to_owned(),
        (Some(target), _) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "cannot read: dangling symbolic link (its target {} does not exist)",
            target.display()
        ),
        _ => io_error(path, &e).message,
    })
}

/// Why a directory without a monitors file is refused (see [`load`]).
pub const EMPTY_DIR: &str = "the directory has no *.yaml or *.yml file; it is refused so that emptying it cannot stop every monitor. \
     To run no monitors on purpose, put a file with `endpoints: []` in it";

fn io_error(path: &Path, e: &std::io::Error) -> ConfigError {
    let message = match e.kind() {
        std::io::ErrorKind::NotFound => "file does not exist".to_owned(),
        std::io::ErrorKind::InvalidData => "file is not valid UTF-8 text".to_owned(),
        _ => format!("cannot read: {e}"),
    };
    ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }
}

/// Why a file without content is refused (see `parse_file`).
pub const EMPTY_FILE: &str = "the file is empty (or only blanks and comments), as a truncated or half-written file is; \
     it is refused so that it cannot stop every monitor. To run no monitors on purpose, write `endpoints: []`";

/// Parse one file's text. `env` resolves `${VAR}`.
pub fn parse_str(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<DeclaredMonitor>, ConfigErrors> {
    parse_file(text, file, env, None)
        .map(|(v, _)| v.into_iter().map(|p| p.monitor).collect())
        .map_err(ConfigErrors)
}

/// One monitor parsed from a file, with the positions `load` needs to report
/// duplicates across files.
pub(crate) struct Parsed {
    pub monitor: DeclaredMonitor,
    pub item: Pos,
}

pub(crate) fn parse_file(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    mut cache: Option<&mut item_cache::ItemCache>,
) -> Result<(Vec<Parsed>, extra::FileAlerting), Vec<ConfigError>> {
    let error = |pos: Pos, message: String| ConfigError {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.col,
        message: shorten_quoted(&message),
    };
    // Line indexes are built on first use: a file without `${` needs none.
    let original = std::cell::OnceCell::new();
    let original = || original.get_or_init(|| LineIndex::new(text));
    let expanded = expand::expand(text, env).map_err(|errs| {
        errs.into_iter()
            .map(|e| error(original().pos(e.offset), e.message))
            .collect::<Vec<_>>()
    })?;
    let parsed_lines = std::cell::OnceCell::new();
    // A position of the expanded text -> the same place in the original text.
    let map = |p: Pos| {
        if expanded.is_verbatim() {
            return p;
        }
        let parsed = parsed_lines.get_or_init(|| LineIndex::new(&expanded.text));
        original().pos(expanded.to_original(parsed.offset(p)))
    };
    // One allocation shared by the origin of every monitor of this file.
    let path: Arc<Path> = Arc::from(file);
    let origin = |item: Pos| Origin::File {
        path: path.clone(),
        line: item.line,
    };

    if without_content(&expanded.text) {
        if let Some(c) = cache {
            c.clear();
        }
        return Err(vec![error(Pos { line: 1, col: 1 }, EMPTY_FILE.to_owned())]);
    }

    // Found once, used by the item cache and for the items' positions.
    let spans = locate::item_spans(&expanded.text, "endpoints");
    if let Some(c) = cache.as_deref_mut()
        && let Some(split) = c.split(&expanded.text, spans.as_ref())
        && let Some(done) = resolve_split(split, &expanded.text, spans.as_ref(), &map, &origin)
    {
        let (parsed, alerting, hashes, specs, defaults) = done;
        c.remember(defaults, &hashes, &specs);
        return Ok((parsed, alerting));
    }

    let model: model::MonitorsFile = match serde_yaml::from_str(&expanded.text) {
        Ok(m) => m,
        // Caught by `without_content` already; kept so that no null document
        // can ever be read as "no monitors".
        Err(_)
            if matches!(
                serde_yaml::from_str(&expanded.text),
                Ok(serde_yaml::Value::Null)
            ) =>
        {
            if let Some(c) = cache {
                c.clear();
            }
            return Err(vec![error(Pos { line: 1, col: 1 }, EMPTY_FILE.to_owned())]);
        }
        Err(e) => {
            let pos = e.location().map_or(Pos { line: 1, col: 1 }, |l| {
                map(Pos {
                    line: l.line(),
                    col: l.column(),
                })
            });
            let message = serde_message(&e);
            // A field's own parser (durations, statuses, conditions) fails
            // after serde_yaml has read the value, and is then located at the
            // enclosing mapping: find the field, to point at its value.
            if let Some((path, rest)) = message.split_once(": ")
                && !rest.starts_with("missing field")
                && !rest.starts_with("unknown field")
                && let Some(path) = probe::parse_path(path)
                && let Some(field) = probe::failing_field(&expanded.text, &path)
                && let Some(at) = Index::build(&expanded.text).value(&field)
            {
                return Err(vec![error(
                    map(at),
                    format!("{}: {rest}", probe::display_path(&field)),
                )]);
            }
            return Err(vec![error(pos, message)]);
        }
    };

    let index = locate::LazyIndex::new(&expanded.text);
    let items = spans
        .as_ref()
        .map(|(_, s)| locate::item_positions(&expanded.text, s))
        .filter(|items| items.len() == model.endpoints.len());
    let locator = validate::Locator {
        index: &index,
        items: items.as_deref(),
        map: &map,
    };
    let (resolved, mut problems) = validate::resolve(&model, &locator);
    let (certs, alerting, mut more) = extra::resolve(&model, &index, &map);
    problems.append(&mut more);
    let (heartbeats, mut hb_problems) = validate::resolve_heartbeats(&model, &locator);
    problems.append(&mut hb_problems);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|p| error(p.pos, p.message))
            .collect());
    }
    let (specs, items): (Vec<Arc<MonitorSpec>>, Vec<Pos>) = resolved
        .into_iter()
        .map(|r| (Arc::new(MonitorSpec::Endpoint(r.spec)), r.item))
        .unzip();
    if let Some(c) = cache {
        match item_cache::item_hashes(&expanded.text, spans.as_ref()) {
            Some(hashes) if hashes.len() == specs.len() => {
                c.remember(item_cache::defaults_hash(&model), &hashes, &specs)
            }
            _ => c.clear(),
        }
    }
    let mut parsed: Vec<Parsed> = specs
        .into_iter()
        .zip(items)
        .map(|(spec, item)| Parsed {
            monitor: DeclaredMonitor {
                spec,
                origin: origin(item),
            },
            item,
        })
        .collect();
    parsed.extend(others(certs, heartbeats, &origin));
    Ok((parsed, alerting))
}

/// Whether a document has no content at all: empty, blanks, comments, `---`
/// alone, `~`, `null`. That is what a truncation, a full disk or an
/// interrupted `cat > file` leaves, never a decision to stop every monitor,
/// so it is refused like invalid YAML (no monitors is `endpoints: []`).
/// Cheap on a real file: its first lines of content end the scan.
fn without_content(text: &str) -> bool {
    let mut content = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if content.next().is_none() {
        // Blanks (tabs included, which YAML itself would not even parse).
        return true;
    }
    // A null document has at most a `---` and a `~`/`null` (and `...`):
    // more lines of content than that are content.
    if content.nth(2).is_some() {
        return false;
    }
    matches!(
        serde_yaml::from_str::<serde_yaml::Value>(text),
        Ok(serde_yaml::Value::Null)
    )
}

/// The certificates and heartbeats of a file, as declared monitors.
fn others(
    certs: Vec<extra::ResolvedCert>,
    heartbeats: Vec<validate::ResolvedHeartbeat>,
    origin: &dyn Fn(Pos) -> Origin,
) -> Vec<Parsed> {
    let certs = certs
        .into_iter()
        .map(|c| (MonitorSpec::Certificate(c.spec), c.item));
    let heartbeats = heartbeats
        .into_iter()
        .map(|h| (MonitorSpec::Heartbeat(h.spec), h.item));
    certs
        .chain(heartbeats)
        .map(|(spec, item)| Parsed {
            monitor: DeclaredMonitor {
                spec: spec.into(),
                origin: origin(item),
            },
            item,
        })
        .collect::<Vec<_>>()
}

/// What [`resolve_split`] gives back: the monitors, the file's `alerting:`,
/// and what the item cache remembers (item hashes, endpoint specs, defaults).
type SplitDone = (
    Vec<Parsed>,
    extra::FileAlerting,
    Vec<Option<u128>>,
    Vec<Arc<MonitorSpec>>,
    u128,
);

/// The fast path of a reload: validate only the items the cache did not
/// know. `None` on any problem at all, so that the full parser reports it
/// with exactly the positions and messages it always gives.
fn resolve_split(
    split: item_cache::Split,
    text: &str,
    spans: Option<&locate::ItemSpans>,
    map: &dyn Fn(Pos) -> Pos,
    origin: &dyn Fn(Pos) -> Origin,
) -> Option<SplitDone> {
    let item_cache::Split {
        skeleton,
        mut rest,
        slots,
        hashes,
    } = split;
    let positions = locate::item_positions(text, &spans?.1);
    if positions.len() != slots.len() {
        return None;
    }
    // Validate the fresh items as a file of their own, with the same defaults.
    let mut fresh_at = Vec::new();
    let mut slots: Vec<Option<Arc<MonitorSpec>>> = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            item_cache::Slot::Cached(spec) => Some(spec),
            item_cache::Slot::Fresh(decl) => {
                fresh_at.push(i);
                rest.endpoints.push(*decl);
                None
            }
        })
        .collect();
    let fresh_positions: Vec<Pos> = fresh_at.iter().map(|&i| positions[i]).collect();
    // The other sections are where they are in the whole text; an index of
    // the skeleton locates them without indexing 10k items.
    let skeleton_index = locate::LazyIndex::new(&skeleton);
    let index = &skeleton_index;
    let locator = validate::Locator {
        index,
        items: Some(&fresh_positions),
        map,
    };
    let (resolved, problems) = validate::resolve(&rest, &locator);
    if !problems.is_empty() || resolved.len() != fresh_at.len() {
        return None;
    }
    for (i, r) in fresh_at.into_iter().zip(resolved) {
        slots[i] = Some(Arc::new(MonitorSpec::Endpoint(r.spec)));
    }
    let specs: Vec<Arc<MonitorSpec>> = slots.into_iter().collect::<Option<_>>()?;
    // A name declared twice is a problem for the full parser to locate.
    let mut names = std::collections::HashSet::with_capacity(specs.len());
    if !specs.iter().all(|s| names.insert(s.name())) {
        return None;
    }
    drop(names);
    rest.endpoints.clear();
    let (certs, alerting, cert_problems) = extra::resolve(&rest, index, map);
    let hb_locator = validate::Locator {
        index,
        items: None,
        map,
    };
    let (heartbeats, hb_problems) = validate::resolve_heartbeats(&rest, &hb_locator);
    if !cert_problems.is_empty() || !hb_problems.is_empty() {
        return None;
    }
    let mut parsed: Vec<Parsed> = specs
        .iter()
        .zip(&positions)
        .map(|(spec, &p)| {
            let item = map(p);
            Parsed {
                monitor: DeclaredMonitor {
                    spec: spec.clone(),
                    origin: origin(item),
                },
                item,
            }
        })
        .collect();
    parsed.extend(others(certs, heartbeats, origin));
    let defaults = item_cache::defaults_hash(&rest);
    Some((parsed, alerting, hashes, specs, defaults))
}

/// serde_yaml's message without its trailing position (the error carries
/// it), plus a suggestion for a misspelt key or value.
/// A message with every quoted value (`"..."` or `` `...` ``) longer than
/// [`QUOTE_KEEP`] characters cut to its start, and at most
/// [`MESSAGE_KEEP`] characters in all: a value of 100 kB (a label, a file
/// line) must not make an error of 100 kB in get_health, a resource's
/// status or a log line.
pub fn shorten_quoted(msg: &str) -> String {
    const QUOTE_KEEP: usize = 60;
    const MESSAGE_KEEP: usize = 2_000;
    if msg.len() <= QUOTE_KEEP {
        return msg.to_owned();
    }
    let cut = |s: &str, keep: usize, out: &mut String| {
        if s.chars().nth(keep).is_some() {
            out.extend(s.chars().take(keep));
            out.push('…');
        } else {
            out.push_str(s);
        }
    };
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let q = &rest[i..=i];
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let Some(j) = rest.find(q) else { break };
        cut(&rest[..j], QUOTE_KEEP, &mut out);
        out.push_str(q);
        rest = &rest[j + 1..];
    }
    cut(rest, MESSAGE_KEEP, &mut out);
    if out.chars().nth(MESSAGE_KEEP).is_some() {
        let mut short = String::new();
        cut(&out, MESSAGE_KEEP, &mut short);
        return short;
    }
    out
}

fn serde_message(e: &serde_yaml::Error) -> String {
    let mut msg = e.to_string();
    if let Some(l) = e.location() {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = stripped.to_owned();
        } else if let Some(i) = msg.find(&format!("{suffix},")) {
            // libyaml errors: "problem at line L column C, while parsing ..."
            msg.replace_range(i..i + suffix.len(), "");
        }
    }
    if let Some(s) = suggestion(&msg) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    msg
}

/// For "unknown field `intervall`, expected one of `name`, `interval`, ...":
/// the expected name closest to the unknown one, if it is close (edit
/// distance at most 2, ignoring case).
fn suggestion(msg: &str) -> Option<String> {
    let rest = msg
        .split_once("unknown field `")
        .or_else(|| msg.split_once("unknown variant `"))?
        .1;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let unknown_lc = unknown.to_lowercase();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (edit_distance(&unknown_lc, &cand.to_lowercase()), cand))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand.to_owned())
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Resolve one endpoint declared outside a monitors file (a Kubernetes
/// `Monitor` resource, a label) with exactly the file's rules and defaults, so
/// the two can never disagree. Problems are `field: message`, since there is
/// no line a person could open.
pub fn resolve_endpoint(decl: &model::EndpointDecl) -> Result<model::EndpointSpec, Vec<String>> {
    let file = model::MonitorsFile {
        endpoints: vec![decl.clone()],
        ..Default::default()
    };
    resolve_one("endpoints", decl, |index, map| {
        let locator = validate::Locator {
            index,
            items: None,
            map,
        };
        let (mut resolved, problems) = validate::resolve(&file, &locator);
        (resolved.pop().map(|r| r.spec), problems)
    })
}

/// [`resolve_endpoint`] for a heartbeat: the file's rules and defaults.
pub fn resolve_heartbeat(decl: &model::HeartbeatDecl) -> Result<model::HeartbeatSpec, Vec<String>> {
    let file = model::MonitorsFile {
        heartbeats: vec![decl.clone()],
        ..Default::default()
    };
    resolve_one("heartbeats", decl, |index, map| {
        let locator = validate::Locator {
            index,
            items: None,
            map,
        };
        let (mut resolved, problems) = validate::resolve_heartbeats(&file, &locator);
        (resolved.pop().map(|r| r.spec), problems)
    })
}

/// [`resolve_endpoint`] for a certificate: the file's rules and defaults.
pub fn resolve_certificate(
    decl: &model::CertificateDecl,
) -> Result<model::CertificateSpec, Vec<String>> {
    let file = model::MonitorsFile {
        certificates: vec![decl.clone()],
        ..Default::default()
    };
    resolve_one("certificates", decl, |index, map| {
        let (mut certs, _, problems) = extra::resolve(&file, index, map);
        (certs.pop().map(|c| c.spec), problems)
    })
}

/// The shared part of the `resolve_*` functions: the validator locates
/// problems in text, so give it the declaration as YAML (under its `section`)
/// and turn each position back into the field it points at.
fn resolve_one<D: serde::Serialize, S>(
    section: &str,
    decl: &D,
    resolve: impl FnOnce(
        &locate::LazyIndex<'_>,
        &dyn Fn(Pos) -> Pos,
    ) -> (Option<S>, Vec<validate::Problem>),
) -> Result<S, Vec<String>> {
    let text = serde_yaml::to_string(&serde_json::json!({ section: [decl] })).unwrap_or_default();
    let index = locate::LazyIndex::new(&text);
    let (spec, problems) = resolve(&index, &|p: Pos| p);
    match spec {
        Some(spec) if problems.is_empty() => Ok(spec),
        _ => Err(field_messages(&text, section, problems)),
    }
}

/// Each problem as `field: message`, the field found at the problem's line
/// of the YAML the declaration was rendered to.
fn field_messages(text: &str, section: &str, problems: Vec<validate::Problem>) -> Vec<String> {
    problems
        .into_iter()
        .map(|p| {
            let field = text
                .lines()
                .nth(p.pos.line.saturating_sub(1))
                .map(|l| l.trim_start().trim_start_matches("- "))
                .and_then(|l| l.split_once(':'))
                .map(|(k, _)| k.trim().to_owned())
                .filter(|k| !k.is_empty() && k != section);
            match field {
                Some(f) if !p.message.starts_with(&f) => format!("{f}: {}", p.message),
                _ => p.message,
            }
        })
        .collect()
}

/// The JSON Schema of the monitors file, for `maintenant schema`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::MonitorsFile)).expect("schema serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{HttpMethod, StatusPattern, Target};
    use crate::duration::Duration;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_HOST" => Some("api.example.com".into()),
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Vec<DeclaredMonitor>, ConfigErrors> {
        parse_str(text, Path::new("m.yaml"), &env)
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match parse(text) {
            Ok(m) => panic!("expected errors, got {m:?}"),
            Err(e) => e.0,
        }
    }

    /// The (line, column) of each error, and its message.
    fn located(text: &str) -> Vec<(usize, usize, String)> {
        errors(text)
            .into_iter()
            .map(|e| (e.line, e.column, e.message))
            .collect()
    }

    fn endpoint(m: &DeclaredMonitor) -> &model::EndpointSpec {
        match m.spec.as_ref() {
            MonitorSpec::Endpoint(e) => e,
            other => panic!("not an endpoint: {other:?}"),
        }
    }

    const VALID: &str = "\
# monitors
defaults:
  endpoint:
    interval: 1m
    failure_threshold: 5

endpoints:
  - name: api
    group: prod
    url: https://${API_HOST}/health
    headers:
      Authorization: Bearer ${TOKEN}
    expected_status: [200, \"3xx\"]
    conditions:
      - \"[RESPONSE_TIME] < 500\"
  - name: db
    url: tcp://db:5432
    interval: 10s
    timeout: 2s
    recovery_threshold: 1
  - name: plain
    url: http://localhost:8080/
    method: POST
    body: '{}'
    tls_verify: false
    max_redirects: 0
";

    #[test]
    fn valid_file_applies_defaults() {
        let ms = parse(VALID).unwrap();
        assert_eq!(ms.len(), 3);

        let api = endpoint(&ms[0]);
        assert_eq!(
            ms[0].origin,
            Origin::File {
                path: Path::new("m.yaml").into(),
                line: 8
            }
        );
        assert_eq!(api.name, "api");
        assert_eq!(api.group.as_deref(), Some("prod"));
        assert_eq!(
            api.target,
            Target::Http {
                url: "https://api.example.com/health".into()
            }
        );
        assert_eq!(api.headers["Authorization"], "Bearer s3cret");
        assert_eq!(api.method, HttpMethod::Get);
        assert_eq!(
            api.expected_status,
            vec![
                StatusPattern { min: 200, max: 200 },
                StatusPattern { min: 300, max: 399 }
            ]
        );
        assert_eq!(api.conditions.len(), 1);
        assert_eq!(api.interval, Duration::from_secs(60)); // defaults.endpoint
        assert_eq!(api.timeout, Duration::from_secs(10)); // built in
        assert_eq!(api.failure_threshold, 5); // defaults.endpoint
        assert_eq!(api.recovery_threshold, 2); // built in
        assert!(api.tls_verify);
        assert_eq!(api.max_redirects, 10);

        let db = endpoint(&ms[1]);
        assert_eq!(
            ms[1].origin,
            Origin::File {
                path: Path::new("m.yaml").into(),
                line: 16
            }
        );
        assert_eq!(
            db.target,
            Target::Tcp {
                host: "db".into(),
                port: 5432
            }
        );
        assert_eq!(db.interval, Duration::from_secs(10));
        assert_eq!(db.timeout, Duration::from_secs(2));
        assert_eq!(db.recovery_threshold, 1);
        assert_eq!(
            db.expected_status,
            vec![StatusPattern { min: 200, max: 299 }]
        );

        let plain = endpoint(&ms[2]);
        assert_eq!(plain.method, HttpMethod::Post);
        assert_eq!(plain.body.as_deref(), Some("{}"));
        assert!(!plain.tls_verify);
        assert_eq!(plain.max_redirects, 0);
    }

    #[test]
    fn unknown_key_is_located() {
        let text = "endpoints:\n  - name: a\n    url: http://a\n    retries: 3\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!((e.line, e.column), (4, 5), "{e}");
        assert!(
            e.message
                .contains("unknown field `retries`, expected one of"),
            "{e}"
        );
        assert!(!e.message.contains("did you mean"), "{e}");
        assert!(!e.message.contains(" at line "), "{e}");
        assert!(e.to_string().starts_with("m.yaml:4:5: "), "{e}");
    }

    #[test]
    fn misspelt_key_gets_a_suggestion() {
        let errs = located("endpoints:\n  - name: a\n    url: http://a\n    intervall: 5s\n");
        assert_eq!(errs[0].0, 4);
        assert!(
            errs[0].2.contains("did you mean `interval`?"),
            "{}",
            errs[0].2
        );
        let errs = located("endpoint:\n  - name: a\n");
        assert_eq!((errs[0].0, errs[0].1), (1, 1));
        assert!(
            errs[0].2.contains("did you mean `endpoints`?"),
            "{}",
            errs[0].2
        );
        let errs = located("endpoints:\n  - name: a\n    url: http://a\n    method: get\n");
        assert!(errs[0].2.contains("did you mean `GET`?"), "{}", errs[0].2);
    }

    #[test]
    fn bad_duration_is_located() {
        let errs = located("endpoints:\n  - name: a\n    url: http://a\n    interval: 5 minutes\n");
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].0, errs[0].1), (4, 15), "{errs:?}");
        assert!(
            errs[0]
                .2
                .starts_with("endpoints[0].interval: invalid duration"),
            "{errs:?}"
        );
    }

    #[test]
    fn bad_status_is_located() {
        let errs = located(
            "endpoints:\n  - name: a\n    url: http://a\n    expected_status: [200, \"2xy\"]\n",
        );
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].0, errs[0].1), (4, 28), "{errs:?}");
        assert!(
            errs[0]
                .2
                .starts_with("endpoints[0].expected_status[1]: invalid expected_status"),
            "{errs:?}"
        );
    }

    #[test]
    fn bad_url_is_located() {
        let errs = located("endpoints:\n  - name: a\n    url: ftp://files.example.com\n");
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].0, errs[0].1), (3, 10), "{errs:?}");
        assert!(errs[0].2.contains("unsupported url scheme"), "{errs:?}");
        let errs = located("endpoints:\n  - name: a\n    url: tcp://db\n");
        assert_eq!((errs[0].0, errs[0].1), (3, 10), "{errs:?}");
        assert!(errs[0].2.contains("needs a port"), "{errs:?}");
    }

    #[test]
    fn duplicate_names_name_the_first() {
        let text = "endpoints:\n  - name: a\n    url: http://a\n  - name: b\n    url: http://b\n  - name: a\n    url: http://c\n";
        let errs = located(text);
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].0, errs[0].1), (6, 11));
        assert_eq!(
            errs[0].2,
            "duplicate endpoint name \"a\": already declared at line 2"
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = "\
endpoints:
  - name: a/b
    url: http://a
    interval: 500ms
  - name: ok
    url: example.com
    timeout: 1m
    failure_threshold: 0
  - name: db
    url: tcp://db:5432
    method: POST
    expected_status: [200]
    conditions:
      - \"[STATUS] == 200\"
";
        let errs = located(text);
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(
            at,
            vec![
                (2, 11),
                (4, 15),
                (6, 10),
                (7, 14),
                (8, 24),
                (11, 5),
                (12, 5),
                (14, 9)
            ],
            "{errs:#?}"
        );
        assert!(errs[0].2.contains("contains `/`"));
        assert!(errs[1].2.contains("at least 1s"));
        assert!(errs[2].2.contains("no scheme"));
        assert!(errs[3].2.contains("longer than the interval 30s"));
        assert!(errs[4].2.contains("failure_threshold must be at least 1"));
        assert!(
            errs[5]
                .2
                .contains("`method` does not apply to a tcp:// endpoint")
        );
        assert!(errs[6].2.contains("`expected_status` does not apply"));
        assert!(errs[7].2.contains("needs an HTTP response"));
    }

    #[test]
    fn defaults_are_validated() {
        let text = "defaults:\n  endpoint:\n    timeout: 1m\nendpoints:\n  - name: a\n    url: http://a\n    interval: 10s\n";
        let errs = located(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (3, 14));
        assert!(
            errs[0]
                .2
                .contains("default timeout 1m is longer than the default interval 30s")
        );
    }

    #[test]
    fn an_inherited_timeout_is_cut_to_a_shorter_interval() {
        let ms = parse("endpoints:\n  - name: a\n    url: http://a\n    interval: 1s\n").unwrap();
        assert_eq!(endpoint(&ms[0]).timeout, "1s".parse().unwrap());
        let errs = located(
            "endpoints:\n  - name: a\n    url: http://a\n    interval: 1s\n    timeout: 2s\n",
        );
        assert_eq!((errs[0].0, errs[0].1), (5, 14));
    }

    #[test]
    fn env_expansion_default_escape_and_unset() {
        let text = "endpoints:\n  - name: $${literal}\n    url: http://${NOPE:-fallback.local}:${PORT:-80}/\n";
        let ms = parse(text).unwrap();
        assert_eq!(endpoint(&ms[0]).name, "${literal}");
        assert_eq!(
            endpoint(&ms[0]).target,
            Target::Http {
                url: "http://fallback.local:80/".into()
            }
        );

        // Unset: located at the `${`; every unset variable is reported.
        let text =
            "endpoints:\n  # ${IN_A_COMMENT}\n  - name: a\n    url: http://${MISSING}/${ALSO}\n";
        let errs = located(text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].0, errs[0].1), (4, 17));
        assert_eq!(
            errs[0].2,
            "environment variable MISSING is not set (use ${MISSING:-default} for a default)"
        );
        assert_eq!((errs[1].0, errs[1].1), (4, 28));
    }

    #[test]
    fn positions_after_expansion_point_at_the_original_text() {
        // The value inserted before the error changes the length of the line.
        let text = "endpoints:\n  - {name: \"${API_HOST}\", url: http://a, interval: nope}\n";
        let errs = located(text);
        assert_eq!((errs[0].0, errs[0].1), (2, 52), "{errs:?}");
        assert!(
            errs[0]
                .2
                .starts_with("endpoints[0].interval: invalid duration"),
            "{errs:?}"
        );
        let text = "endpoints:\n  - {name: \"${API_HOST}\", url: \"tcp://${API_HOST}\"}\n";
        let errs = located(text);
        assert_eq!((errs[0].0, errs[0].1), (2, 32), "{errs:?}");
    }

    #[test]
    fn a_file_without_content_is_refused_and_an_explicit_empty_list_is_not() {
        for text in [
            "",
            "\n",
            "  \n\t\n   ",
            "# only a comment\n",
            "# a comment\n\n   # another\n",
            "---\n",
            "~\n",
        ] {
            let errs = located(text);
            assert_eq!(errs.len(), 1, "{text:?}: {errs:?}");
            assert_eq!((errs[0].0, errs[0].1), (1, 1), "{text:?}");
            assert!(errs[0].2.contains("the file is empty"), "{errs:?}");
            assert!(errs[0].2.contains("`endpoints: []`"), "{errs:?}");
        }
        for text in [
            "endpoints: []\n",
            "# nothing to check here\nheartbeats: []\n",
            "defaults: {}\n",
        ] {
            assert_eq!(parse(text).unwrap(), vec![], "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_are_located() {
        let errs = located("endpoints:\n  - name: a: b\n    url: x\n");
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].0, errs[0].1), (2, 12), "{errs:?}");
        assert!(
            errs[0]
                .2
                .starts_with("mapping values are not allowed in this context"),
            "{errs:?}"
        );
        assert!(!errs[0].2.contains("at line 2 column 12"), "{errs:?}");
        let errs = located("endpoints: 3\n");
        assert_eq!((errs[0].0, errs[0].1), (1, 12), "{errs:?}");
        let errs = located("endpoints:\n  - url: http://a\n");
        assert!(errs[0].2.contains("missing field `name`"), "{errs:?}");
        assert_eq!(errs[0].0, 2);
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn directory_merges_files_and_reports_duplicates_across_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("b.yml"),
            "endpoints:\n  - name: b\n    url: http://b\n",
        );
        write(
            &dir.path().join("a.yaml"),
            "endpoints:\n  - name: a\n    url: http://a\n",
        );
        write(&dir.path().join("notes.txt"), "not: yaml: at: all");
        write(&dir.path().join(".hidden.yaml"), "garbage: [");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(
            loaded.files,
            vec![dir.path().join("a.yaml"), dir.path().join("b.yml")]
        );
        let names: Vec<_> = loaded
            .monitors
            .iter()
            .map(|m| m.spec.name().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            loaded.monitors[1].origin,
            Origin::File {
                path: dir.path().join("b.yml").into(),
                line: 2
            }
        );

        write(
            &dir.path().join("c.yaml"),
            "\nendpoints:\n  - name: x\n    url: http://x\n  - name: a\n    url: http://a2\n",
        );
        let errs = load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, dir.path().join("c.yaml"));
        assert_eq!((errs[0].line, errs[0].column), (5, 5), "at the list item");
        assert_eq!(
            errs[0].message,
            format!(
                "duplicate endpoint name \"a\": already declared at {}:2",
                dir.path().join("a.yaml").display()
            )
        );

        // Problems of several files are all reported.
        write(
            &dir.path().join("d.yaml"),
            "endpoints:\n  - name: d\n    url: nope\n",
        );
        let errs = load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[cfg(unix)]
    #[test]
    fn configmap_directory_loads_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("..2024_01_01_00_00_00.123");
        std::fs::create_dir(&ts).unwrap();
        write(
            &ts.join("monitors.yaml"),
            "endpoints:\n  - name: a\n    url: http://a\n",
        );
        std::os::unix::fs::symlink("..2024_01_01_00_00_00.123", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/monitors.yaml", dir.path().join("monitors.yaml"))
            .unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.files, vec![dir.path().join("monitors.yaml")]);
        assert_eq!(loaded.monitors.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_yaml_entries_of_a_directory_are_errors_naming_them() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            &d.join("a.yaml"),
            "endpoints:\n  - name: a\n    url: http://a\n",
        );
        symlink(d.join("moved-away.yaml"), d.join("b.yaml")).unwrap();
        symlink("loop2.yaml", d.join("loop1.yaml")).unwrap();
        symlink("loop1.yaml", d.join("loop2.yaml")).unwrap();
        std::fs::create_dir(d.join("x.yaml")).unwrap();
        // Not monitors files by name: still skipped quietly.
        symlink("nowhere", d.join("notes.txt")).unwrap();
        symlink("nowhere", d.join(".hidden.yaml")).unwrap();
        let errs = load(d).unwrap_err().0;
        let got: Vec<(PathBuf, String)> = errs
            .iter()
            .map(|e| (e.file.clone(), e.message.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    d.join("b.yaml"),
                    format!(
                        "cannot read: dangling symbolic link (its target {} does not exist)",
                        d.join("moved-away.yaml").display()
                    )
                ),
                (
                    d.join("loop1.yaml"),
                    "cannot read: symbolic link loop".to_owned()
                ),
                (
                    d.join("loop2.yaml"),
                    "cannot read: symbolic link loop".to_owned()
                ),
                (
                    d.join("x.yaml"),
                    "is a directory, not a monitors file (rename it or move it out of this folder)"
                        .to_owned()
                ),
            ],
            "{errs:#?}"
        );
        assert!(
            errs[0]
                .to_string()
                .starts_with(&format!("{}:0:0: ", d.join("b.yaml").display())),
            "{}",
            errs[0]
        );
        // A FIFO is refused, not read (a read would wait for a writer).
        for name in ["b.yaml", "loop1.yaml", "loop2.yaml"] {
            std::fs::remove_file(d.join(name)).unwrap();
        }
        std::fs::remove_dir(d.join("x.yaml")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(d.join("f.yaml"))
            .status()
            .unwrap();
        assert!(made.success());
        let errs = load(d).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].message, "is not a regular file");
        std::fs::remove_file(d.join("f.yaml")).unwrap();
        assert_eq!(load(d).unwrap().monitors.len(), 1);
    }

    #[test]
    fn empty_file_and_directory_are_refused_and_so_is_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let errs = load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, dir.path());
        assert_eq!(errs[0].message, EMPTY_DIR);
        // Only files without content: each is reported.
        write(&dir.path().join("a.yaml"), "");
        write(&dir.path().join("b.yml"), "  \n# soon\n");
        let errs = load(dir.path()).unwrap_err().0;
        let files: Vec<_> = errs.iter().map(|e| e.file.clone()).collect();
        assert_eq!(
            files,
            [dir.path().join("a.yaml"), dir.path().join("b.yml")],
            "{errs:?}"
        );
        assert!(errs.iter().all(|e| e.message == EMPTY_FILE), "{errs:?}");
        assert!(errs[0].to_string().ends_with("a.yaml:1:1: the file is empty (or only blanks and comments), as a truncated or half-written file is; it is refused so that it cannot stop every monitor. To run no monitors on purpose, write `endpoints: []`"), "{}", errs[0]);
        // Said explicitly, no monitors is a valid load.
        write(&dir.path().join("a.yaml"), "endpoints: []\n");
        write(&dir.path().join("b.yml"), "heartbeats: []\n");
        assert!(load(dir.path()).unwrap().monitors.is_empty());

        let empty = dir.path().join("m.yaml");
        write(&empty, "");
        let errs = load(&empty).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, empty);
        assert_eq!(errs[0].message, EMPTY_FILE);

        let missing = dir.path().join("nope.yaml");
        let errs = load(&missing).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].line, errs[0].column), (0, 0));
        assert!(errs[0].message.contains("does not exist"), "{}", errs[0]);
        assert_eq!(errs[0].file, missing);
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../config.example.yaml");
        let ms = parse_str(text, Path::new("config.example.yaml"), &|_| None).unwrap();
        assert_eq!(ms.len(), 2);
    }

    fn heartbeat(m: &DeclaredMonitor) -> &model::HeartbeatSpec {
        match m.spec.as_ref() {
            MonitorSpec::Heartbeat(h) => h,
            other => panic!("not a heartbeat: {other:?}"),
        }
    }

    #[test]
    fn heartbeats_parse_with_defaults() {
        let text = "\
endpoints:
  - name: backup
    url: http://a
heartbeats:
  - name: backup
    period: 1d
    grace: 2h
  - name: report
    group: jobs
    schedule: \"0 3 * * 1-5\"
    timezone: Europe/Paris
    token: 0123456789abcdef0123
  - name: hourly
    schedule: \"@hourly\"
";
        let ms = parse(text).unwrap();
        assert_eq!(ms.len(), 4, "an endpoint and a heartbeat may share a name");
        let backup = heartbeat(&ms[1]);
        assert_eq!(ms[1].key().id(), "heartbeat/backup");
        assert_eq!(
            backup.schedule,
            model::HeartbeatSchedule::Period {
                period: "1d".parse().unwrap()
            }
        );
        assert_eq!(backup.grace, "2h".parse().unwrap());
        assert_eq!(
            ms[1].origin,
            Origin::File {
                path: Path::new("m.yaml").into(),
                line: 5
            }
        );
        let report = heartbeat(&ms[2]);
        assert_eq!(
            report.schedule,
            model::HeartbeatSchedule::Cron {
                expression: "0 3 * * 1-5".into(),
                timezone: "Europe/Paris".into()
            }
        );
        assert_eq!(report.token.as_deref(), Some("0123456789abcdef0123"));
        let hourly = heartbeat(&ms[3]);
        assert_eq!(hourly.grace, "1h".parse().unwrap(), "default grace");
        assert!(
            matches!(&hourly.schedule, model::HeartbeatSchedule::Cron { timezone, .. } if timezone == "UTC"),
            "default time zone"
        );
    }

    #[test]
    fn heartbeat_problems_are_located_and_actionable() {
        let text = "\
heartbeats:
  - name: a
    period: 1h
    schedule: \"0 3 * * *\"
  - name: b
    schedule: \"0 25 * * *\"
  - name: c
    schedule: \"0 3 * * *\"
    timezone: Mars/Olympus
  - name: d
  - name: e
    period: 1h
    timezone: UTC
  - name: f
    period: 1h
    token: short
";
        let errs = located(text);
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(
            at,
            vec![(4, 5), (6, 15), (9, 15), (10, 5), (13, 5), (16, 12)],
            "{errs:#?}"
        );
        assert!(
            errs[0]
                .2
                .contains("either `period` or `schedule`, not both")
        );
        assert!(errs[1].2.contains("invalid cron expression \"0 25 * * *\""));
        assert!(errs[2].2.contains("unknown time zone \"Mars/Olympus\""));
        assert!(errs[3].2.contains("needs `period` (like 1h) or `schedule`"));
        assert!(errs[4].2.contains("`timezone` only applies to `schedule`"));
        assert!(errs[5].2.contains("at least 16"));

        // A huge value is quoted by its start only.
        let errs = located(&format!(
            "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/\n    failure_threshold: {}\n",
            "9".repeat(100_000) + "d"
        ));
        assert!(errs[0].2.len() < 300, "{}", errs[0].2.len());
        assert!(errs[0].2.contains("failure_threshold"), "{errs:?}");

        // Issue 18: a grace past the bound is refused at its value, by name.
        let errs = located("heartbeats:\n  - name: a\n    period: 1h\n    grace: 3000000d\n");
        assert_eq!((errs[0].0, errs[0].1), (4, 12), "{errs:?}");
        assert!(errs[0].2.starts_with("heartbeats[0].grace: "), "{errs:?}");
        assert!(errs[0].2.contains("longer than 366d"), "{errs:?}");
        for (text, field) in [
            (
                "certificates:\n  - name: c\n    host: h\n    interval: 400d\n",
                "certificates[0].interval: ",
            ),
            (
                "alerting:\n  channels:\n    - name: o\n      type: webhook\n      url: http://127.0.0.1:1/\n      retry_backoff: 9999d\n",
                "alerting.channels[0].retry_backoff: ",
            ),
            (
                "alerting:\n  repeat_interval: 400d\n",
                "alerting.repeat_interval: ",
            ),
        ] {
            let errs = located(text);
            assert!(errs[0].2.starts_with(field), "{errs:?}");
        }

        let errs = located("heartbeats:\n  - name: a\n    period: 1h\n    graze: 5m\n");
        assert_eq!((errs[0].0, errs[0].1), (4, 5), "{errs:?}");
        assert!(errs[0].2.contains("unknown field `graze`"), "{errs:?}");
        assert!(errs[0].2.contains("did you mean `grace`?"), "{errs:?}");

        let errs =
            located("heartbeats:\n  - name: a\n    period: 1h\n  - name: a\n    period: 2h\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].2.contains("duplicate heartbeat name \"a\""),
            "{errs:?}"
        );
    }

    #[test]
    fn schema_includes_heartbeats() {
        let schema = json_schema().to_string();
        assert!(schema.contains("\"heartbeats\""));
        assert!(schema.contains("HeartbeatDecl"));
        assert!(schema.contains("timezone"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("intervall", "interval"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggestion("unknown field `urll`, expected one of `name`, `url`"),
            Some("url".into())
        );
        assert_eq!(
            suggestion("unknown field `zzzzzz`, expected one of `name`, `url`"),
            None
        );
        assert_eq!(suggestion("unknown field `x`, there are no fields"), None);
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        fn any_env(name: &str) -> Option<String> {
            name.len().is_multiple_of(2).then(|| format!("v{name}"))
        }

        #[derive(Debug, Clone)]
        enum Edit {
            Insert(usize, char),
            Delete(usize),
        }

        fn edit() -> impl Strategy<Value = Edit> {
            let chars = prop_oneof![
                Just(' '),
                Just('\n'),
                Just(':'),
                Just('-'),
                Just('#'),
                Just('"'),
                Just('\''),
                Just('$'),
                Just('{'),
                Just('}'),
                Just('['),
                Just('&'),
                Just('*'),
                Just('\t'),
                any::<char>(),
            ];
            prop_oneof![
                (any::<usize>(), chars).prop_map(|(i, c)| Edit::Insert(i, c)),
                any::<usize>().prop_map(Edit::Delete)
            ]
        }

        fn apply(text: &str, edits: &[Edit]) -> String {
            let mut chars: Vec<char> = text.chars().collect();
            for e in edits {
                match *e {
                    Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
                    Edit::Delete(i) if !chars.is_empty() => {
                        chars.remove(i % chars.len());
                    }
                    Edit::Delete(_) => {}
                }
            }
            chars.into_iter().collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_text(text in "\\PC*") {
                let _ = parse_str(&text, Path::new("f.yaml"), &any_env);
                let _ = expand::expand(&text, &any_env);
                let _ = Index::build(&text);
            }

            #[test]
            fn yamlish_text(text in "[ a-z:\\-\\n#\"'${}\\[\\],&*!|>?]{0,120}") {
                let _ = parse_str(&text, Path::new("f.yaml"), &any_env);
            }

            #[test]
            fn mutated_valid_file(edits in proptest::collection::vec(edit(), 1..8)) {
                let text = apply(VALID, &edits);
                let _ = parse_str(&text, Path::new("f.yaml"), &env);
                let _ = parse_str(&text, Path::new("f.yaml"), &any_env);
            }
        }
    }
}
