//! The public status page: what `/status.json` answers, the HTML page built
//! from the same data (`/status`), and the Atom feed of incidents
//! (`/status/feed.atom`).
//!
//! Public means: names and states only, never targets, errors or outputs
//! (an endpoint's URL or a job's output may be internal). Every string put
//! into HTML or XML goes through [`escape`]; the page has no script.

use std::collections::BTreeMap;
use std::fmt::Write;

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::limits::{
    FEED_ENTRIES, PAGE_ACTIVE_INCIDENTS, PAGE_RECENT_INCIDENTS, PAGE_UPDATES, PAGE_WINDOWS,
};
use super::store::{Incident, IncidentStatus, Maintenance, WindowState};
use crate::checks::certificate::CertStatus;
use crate::engine::App;
use crate::heartbeat::HeartbeatStatus;
use crate::readmodel::{self, Page, ReadError};
use crate::store::Status;

/// How long a resolved incident stays under "recent incidents".
pub const RECENT_DAYS: i64 = 14;

/// A monitor's state in public words, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Operational,
    /// Paused by an operator: not checked.
    Paused,
    /// Declared, not decided yet.
    Pending,
    /// Late heartbeat, expiring certificate, certificate not readable.
    Degraded,
    Down,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Operational => "operational",
            Level::Paused => "paused",
            Level::Pending => "pending",
            Level::Degraded => "degraded",
            Level::Down => "down",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Operational => "Operational",
            Level::Paused => "Paused",
            Level::Pending => "Pending",
            Level::Degraded => "Degraded",
            Level::Down => "Down",
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MonitorState {
    pub id: String,
    pub name: String,
    /// endpoint, heartbeat or certificate.
    pub kind: String,
    pub status: Level,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// A running maintenance window covers it (`maintenance/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupState {
    /// The monitors' `group`; monitors without one are under "Other".
    pub name: String,
    /// The worst status of its monitors.
    pub status: Level,
    pub monitors: Vec<MonitorState>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusData {
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub generated_at: OffsetDateTime,
    /// The worst status of every monitor.
    pub status: Level,
    pub groups: Vec<GroupState>,
    /// Not resolved yet, newest first.
    pub active_incidents: Vec<Incident>,
    /// Resolved in the last 14 days, newest first.
    pub recent_incidents: Vec<Incident>,
    pub ongoing_maintenance: Vec<Maintenance>,
    pub upcoming_maintenance: Vec<Maintenance>,
    /// What this page leaves out to stay small (docs/limits.md): all false
    /// when it shows everything.
    pub truncated: Truncated,
}

/// Which lists of the page were cut (each carries its newest or soonest
/// items), and whether some incident shows only its newest updates.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Truncated {
    pub active_incidents: bool,
    pub recent_incidents: bool,
    /// Some incident shows only its newest updates.
    pub updates: bool,
    pub ongoing_maintenance: bool,
    pub upcoming_maintenance: bool,
}

/// Keep the newest [`PAGE_UPDATES`] of an incident's timeline; whether any was cut.
fn newest_updates(mut i: Incident) -> (Incident, bool) {
    let cut = i.updates.len().saturating_sub(PAGE_UPDATES);
    i.updates.drain(..cut);
    (i, cut > 0)
}

/// Keep at most `max` items; whether any was cut.
fn at_most<T>(mut v: Vec<T>, max: usize) -> (Vec<T>, bool) {
    let cut = v.len() > max;
    v.truncate(max);
    (v, cut)
}

/// The worst decided status: a paused monitor or one not decided yet (a
/// heartbeat never pinged) does not make a working system look unknown.
/// Only when nothing is decided is the answer that.
fn summary(levels: impl Iterator<Item = Level>) -> Level {
    let all: Vec<Level> = levels.collect();
    all.iter()
        .copied()
        .filter(|l| !matches!(l, Level::Pending | Level::Paused))
        .max()
        .or_else(|| all.iter().copied().max())
        .unwrap_or(Level::Operational)
}

/// Every item of a paged list.
fn all<T>(
    mut page: impl FnMut(Option<&str>) -> Result<Page<T>, ReadError>,
) -> Result<Vec<T>, ReadError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let p = page(cursor.as_deref())?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

pub fn status_data(app: &App) -> Result<StatusData, ReadError> {
    let now = OffsetDateTime::now_utc();
    let windows = app.status.windows();
    let mut monitors: Vec<(Option<String>, MonitorState)> = Vec::new();
    let mut push = |kind: crate::monitor::MonitorKind,
                    name: String,
                    group: Option<String>,
                    status: Level,
                    since: Option<OffsetDateTime>| {
        let key = crate::monitor::MonitorKey::new(kind, name);
        let maintenance = super::silence::silencing_window(&windows, &key, group.as_deref(), now);
        monitors.push((
            group,
            MonitorState {
                id: key.id(),
                kind: kind.as_str().to_owned(),
                name: key.name.to_string(),
                status,
                since,
                maintenance,
            },
        ));
    };
    let filter = readmodel::EndpointFilter::default();
    for e in all(|c| readmodel::list_endpoints(app, &filter, Some(500), c))? {
        let level = match e.observed.status {
            Status::Up => Level::Operational,
            Status::Down => Level::Down,
            Status::Pending => Level::Pending,
            Status::Paused => Level::Paused,
        };
        push(
            crate::monitor::MonitorKind::Endpoint,
            e.name,
            e.group,
            level,
            e.observed.since,
        );
    }
    let hb_filter = readmodel::heartbeats::HeartbeatFilter::default();
    for h in all(|c| readmodel::heartbeats::list_heartbeats(app, &hb_filter, Some(500), c))? {
        let level = match h.observed.status {
            HeartbeatStatus::Up | HeartbeatStatus::Started => Level::Operational,
            HeartbeatStatus::New => Level::Pending,
            HeartbeatStatus::Late => Level::Degraded,
            HeartbeatStatus::Down => Level::Down,
            HeartbeatStatus::Paused => Level::Paused,
        };
        push(
            crate::monitor::MonitorKind::Heartbeat,
            h.name,
            h.group,
            level,
            h.observed.since,
        );
    }
    for c in all(|c| crate::views::certificates::list_certificates(app, None, None, Some(500), c))?
    {
        let level = match c.status {
            CertStatus::Valid => Level::Operational,
            CertStatus::Pending => Level::Pending,
            CertStatus::Paused => Level::Paused,
            CertStatus::Expiring | CertStatus::Error => Level::Degraded,
            CertStatus::Expired | CertStatus::Invalid => Level::Down,
        };
        let paused = c.observed.paused_at.is_some();
        push(
            crate::monitor::MonitorKind::Certificate,
            c.name,
            c.group,
            if paused { Level::Paused } else { level },
            None,
        );
    }
    let mut groups: BTreeMap<(bool, String), Vec<MonitorState>> = BTreeMap::new();
    for (g, m) in monitors {
        // Named groups first (alphabetically), then the ungrouped.
        let k = match g {
            Some(g) => (false, g),
            None => (true, "Other".to_owned()),
        };
        groups.entry(k).or_default().push(m);
    }
    let groups: Vec<GroupState> = groups
        .into_iter()
        .map(|((_, name), monitors)| GroupState {
            status: summary(monitors.iter().map(|m| m.status)),
            name,
            monitors,
        })
        .collect();
    let recent_cutoff = now - time::Duration::days(RECENT_DAYS);
    let mut truncated = Truncated::default();
    // Newest first, one past each quota to know whether a list was cut.
    let (mut active, mut recent) = (Vec::new(), Vec::new());
    for i in app.status.newest_incidents() {
        if active.len() > PAGE_ACTIVE_INCIDENTS && recent.len() > PAGE_RECENT_INCIDENTS {
            break;
        }
        let i = i?;
        let list = if i.status != IncidentStatus::Resolved {
            &mut active
        } else if i.resolved_at.unwrap_or(i.updated_at) >= recent_cutoff {
            &mut recent
        } else {
            continue;
        };
        list.push(i);
    }
    let mut cut_updates = |list: Vec<Incident>| -> Vec<Incident> {
        list.into_iter()
            .map(|i| {
                let (i, cut) = newest_updates(i);
                truncated.updates |= cut;
                i
            })
            .collect()
    };
    let (active, cut) = at_most(active, PAGE_ACTIVE_INCIDENTS);
    truncated.active_incidents = cut;
    let active = cut_updates(active);
    let (recent, cut) = at_most(recent, PAGE_RECENT_INCIDENTS);
    truncated.recent_incidents = cut;
    let recent = cut_updates(recent);
    let (mut ongoing, mut upcoming) = (Vec::new(), Vec::new());
    for w in windows {
        match w.state_at(now) {
            WindowState::Ongoing => ongoing.push(w),
            WindowState::Upcoming => upcoming.push(w),
            WindowState::Completed => {}
        }
    }
    let (ongoing, cut) = at_most(ongoing, PAGE_WINDOWS);
    truncated.ongoing_maintenance = cut;
    let (upcoming, cut) = at_most(upcoming, PAGE_WINDOWS);
    truncated.upcoming_maintenance = cut;
    Ok(StatusData {
        title: "maintenant status".into(),
        generated_at: now,
        status: summary(
            groups
                .iter()
                .flat_map(|g| g.monitors.iter().map(|m| m.status)),
        ),
        groups,
        active_incidents: active,
        recent_incidents: recent,
        ongoing_maintenance: ongoing,
        upcoming_maintenance: upcoming,
        truncated,
    })
}

/// The newest incidents the Atom feed carries ([`FEED_ENTRIES`], each with
/// its newest updates).
pub fn feed_incidents(app: &App) -> Result<Vec<Incident>, ReadError> {
    app.status
        .newest_incidents()
        .take(FEED_ENTRIES)
        .map(|i| -> Result<Incident, ReadError> { Ok(newest_updates(i?).0) })
        .collect()
}

/// Escape text for HTML and XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Human form for the page: `2026-11-25 10:30 UTC`.
fn human(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1d2330}\
main{max-width:760px;margin:0 auto;padding:16px}\
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\
section.card,div.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px;margin:8px 0}\
.banner{padding:14px;border-radius:8px;color:#fff;font-weight:600;font-size:1.1rem}\
.s-operational{background:#1f883d}.s-degraded{background:#bf8700}.s-down{background:#cf222e}\
.s-pending,.s-paused{background:#6e7781}.s-maintenance{background:#0969da}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.8rem;white-space:nowrap}\
ul.monitors{list-style:none;margin:0;padding:0}\
ul.monitors li{display:flex;justify-content:space-between;gap:8px;padding:6px 0;border-top:1px solid #eef0f3;flex-wrap:wrap}\
ul.monitors li:first-child{border-top:0}\
.name{overflow-wrap:anywhere}.kind{color:#57606a;font-size:.85rem}\
.group-head{display:flex;justify-content:space-between;align-items:center;gap:8px}\
.group-head h3{margin:0;font-size:1rem}\
ol.timeline{margin:.5rem 0 0;padding-left:1.2rem}ol.timeline li{margin:.25rem 0}\
time,.muted{color:#57606a;font-size:.85rem}\
footer{margin:2rem 0 1rem;color:#57606a;font-size:.85rem}";

fn badge(class: &str, label: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        escape(class),
        escape(label)
    )
}

fn incident_html(out: &mut String, i: &Incident) {
    let _ = write!(
        out,
        "<div class=\"card incident\" id=\"incident-{id}\"><div class=\"group-head\"><strong>{title}</strong>{badge}</div>",
        id = escape(&i.id),
        title = escape(&i.title),
        badge = badge(
            if i.status == IncidentStatus::Resolved {
                "operational"
            } else {
                "degraded"
            },
            i.status.as_str()
        ),
    );
    if !i.monitors.is_empty() {
        let _ = write!(
            out,
            "<div class=\"muted\">Affects: {}</div>",
            escape(&i.monitors.join(", "))
        );
    }
    out.push_str("<ol class=\"timeline\" reversed>");
    for u in i.updates.iter().rev() {
        let _ = write!(
            out,
            "<li><strong>{status}</strong> &middot; <time datetime=\"{at}\">{human}</time><br>{msg}</li>",
            status = escape(u.status.as_str()),
            at = escape(&ts(u.at)),
            human = escape(&human(u.at)),
            msg = escape(&u.message),
        );
    }
    out.push_str("</ol></div>");
}

fn window_html(out: &mut String, w: &Maintenance, ongoing: bool) {
    let _ = write!(
        out,
        "<div class=\"card maintenance\" id=\"{id}\"><div class=\"group-head\"><strong>{title}</strong>{badge}</div>\
         <div class=\"muted\"><time datetime=\"{s}\">{hs}</time> &ndash; <time datetime=\"{e}\">{he}</time></div>",
        id = escape(&w.id.replace('/', "-")),
        title = escape(&w.title),
        badge = badge(
            "maintenance",
            if ongoing { "in progress" } else { "scheduled" }
        ),
        s = escape(&ts(w.start_time)),
        hs = escape(&human(w.start_time)),
        e = escape(&ts(w.end_time)),
        he = escape(&human(w.end_time)),
    );
    if let Some(m) = &w.message {
        let _ = write!(out, "<p>{}</p>", escape(m));
    }
    let scope: Vec<String> = w
        .monitors
        .iter()
        .cloned()
        .chain(w.groups.iter().map(|g| format!("group {g}")))
        .collect();
    let _ = write!(
        out,
        "<div class=\"muted\">Scope: {}</div></div>",
        escape(&scope.join(", "))
    );
}

/// The page's `Content-Security-Policy`: nothing loads but its one inline
/// `<style>` (allowed by hash, so no other style or any script can run),
/// no framing, no forms, no `<base>`. The page has no `style=` attribute,
/// which a hash cannot allow.
pub fn html_csp() -> &'static str {
    use base64::Engine as _;
    use sha2::Digest as _;
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(CSS));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    })
}

/// The HTML page: server-rendered, no script, readable on a phone.
pub fn render_html(d: &StatusData) -> String {
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{CSS}</style>\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"Incidents\" href=\"status/feed.atom\">\
         </head><body><main><h1>{title}</h1>",
        title = escape(&d.title),
    );
    let (class, text) = if !d.ongoing_maintenance.is_empty() && d.status != Level::Down {
        ("maintenance", "Maintenance in progress")
    } else if !d.active_incidents.is_empty() && d.status != Level::Down {
        // Checks can all pass while people know something is wrong: an open
        // incident must not sit under "All systems operational".
        ("degraded", "Incident in progress")
    } else {
        match d.status {
            Level::Operational => ("operational", "All systems operational"),
            Level::Down => ("down", "Some systems are down"),
            Level::Degraded => ("degraded", "Some systems are degraded"),
            Level::Pending | Level::Paused => ("pending", "Checks are starting"),
        }
    };
    let _ = write!(
        out,
        "<div class=\"banner s-{}\" id=\"overall\">{}</div>",
        class,
        escape(text)
    );
    if !d.active_incidents.is_empty() {
        out.push_str("<h2>Current incidents</h2>");
        for i in &d.active_incidents {
            incident_html(&mut out, i);
        }
    }
    if !d.ongoing_maintenance.is_empty() {
        out.push_str("<h2>Maintenance in progress</h2>");
        for w in &d.ongoing_maintenance {
            window_html(&mut out, w, true);
        }
    }
    out.push_str("<h2>Monitors</h2>");
    if d.groups.is_empty() {
        out.push_str("<div class=\"card muted\">No monitors are declared.</div>");
    }
    for g in &d.groups {
        let _ = write!(
            out,
            "<section class=\"card group\"><div class=\"group-head\"><h3>{}</h3>{}</div><ul class=\"monitors\">",
            escape(&g.name),
            badge(g.status.as_str(), g.status.label()),
        );
        for m in &g.monitors {
            let state = if m.maintenance.is_some() && m.status != Level::Operational {
                badge("maintenance", "Maintenance")
            } else {
                badge(m.status.as_str(), m.status.label())
            };
            let _ = write!(
                out,
                "<li data-id=\"{id}\" data-status=\"{st}\"><span class=\"name\">{name} <span class=\"kind\">{kind}</span></span>{state}</li>",
                id = escape(&m.id),
                st = m.status.as_str(),
                name = escape(&m.name),
                kind = escape(&m.kind),
            );
        }
        out.push_str("</ul></section>");
    }
    if !d.upcoming_maintenance.is_empty() {
        out.push_str("<h2>Upcoming maintenance</h2>");
        for w in &d.upcoming_maintenance {
            window_html(&mut out, w, false);
        }
    }
    out.push_str("<h2>Recent incidents</h2>");
    if d.recent_incidents.is_empty() {
        let _ = write!(
            out,
            "<div class=\"card muted\">No incidents resolved in the last {RECENT_DAYS} days.</div>"
        );
    }
    for i in &d.recent_incidents {
        incident_html(&mut out, i);
    }
    let t = &d.truncated;
    if t.active_incidents
        || t.recent_incidents
        || t.updates
        || t.ongoing_maintenance
        || t.upcoming_maintenance
    {
        out.push_str(
            "<div class=\"card muted\" id=\"truncated\">Only the newest incidents, updates and \
             maintenance windows are shown.</div>",
        );
    }
    let _ = write!(
        out,
        "<footer>Updated <time datetime=\"{}\">{}</time> &middot; <a href=\"status.json\">JSON</a> &middot; <a href=\"status/feed.atom\">Atom feed</a></footer></main></body></html>",
        escape(&ts(d.generated_at)),
        escape(&human(d.generated_at)),
    );
    out
}

/// The Atom feed (RFC 4287) of incidents, active and resolved, newest
/// change first; each entry's content is its timeline.
pub fn render_atom(incidents: &[Incident], base_url: &str, now: OffsetDateTime) -> String {
    let mut list: Vec<&Incident> = incidents.iter().collect();
    list.sort_by_key(|i| std::cmp::Reverse(i.updated_at));
    let updated = list.first().map_or(now, |i| i.updated_at);
    let base = escape(base_url);
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>maintenant incidents</title><id>{base}/status/feed.atom</id>\
         <link rel=\"self\" href=\"{base}/status/feed.atom\"/><link rel=\"alternate\" href=\"{base}/status\"/>\
         <updated>{}</updated><author><name>maintenant</name></author>",
        escape(&ts(updated)),
    );
    for i in list {
        let mut text = String::new();
        for u in i.updates.iter().rev() {
            let _ = writeln!(text, "{} [{}] {}", ts(u.at), u.status.as_str(), u.message);
        }
        let _ = write!(
            out,
            "<entry><id>{base}/status#incident-{id}</id><title>[{status}] {title}</title>\
             <link href=\"{base}/status#incident-{id}\"/><published>{published}</published>\
             <updated>{updated}</updated><content type=\"text\">{content}</content></entry>",
            id = escape(&i.id),
            status = escape(i.status.as_str()),
            title = escape(&i.title),
            published = escape(&ts(i.created_at)),
            updated = escape(&ts(i.updated_at)),
            content = escape(&text),
        );
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_worst_decided_status() {
        use Level::*;
        assert_eq!(summary([Operational, Pending].into_iter()), Operational);
        assert_eq!(
            summary([Operational, Degraded, Paused].into_iter()),
            Degraded
        );
        assert_eq!(summary([Down, Degraded].into_iter()), Down);
        assert_eq!(summary([Pending, Paused].into_iter()), Pending);
        assert_eq!(summary([].into_iter()), Operational);
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn the_page_escapes_what_people_wrote() {
        let now = OffsetDateTime::now_utc();
        let i = Incident {
            id: "1".into(),
            title: "<b>API</b> & co".into(),
            status: IncidentStatus::Investigating,
            monitors: vec!["endpoint/api".into()],
            created_at: now,
            updated_at: now,
            resolved_at: None,
            updates: vec![super::super::IncidentUpdate {
                at: now,
                status: IncidentStatus::Investigating,
                message: "<img src=x onerror=alert(1)>".into(),
                by: "mcp".into(),
            }],
        };
        let d = StatusData {
            title: "t".into(),
            generated_at: now,
            status: Level::Operational,
            groups: vec![],
            active_incidents: vec![i.clone()],
            recent_incidents: vec![],
            ongoing_maintenance: vec![],
            upcoming_maintenance: vec![],
            truncated: Truncated::default(),
        };
        let html = render_html(&d);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>API"));
        assert!(html.contains("&lt;b&gt;API&lt;/b&gt; &amp; co"));
        assert!(!html.contains("<script"));
        let atom = render_atom(&[i], "http://h", now);
        assert!(atom.contains("<title>[investigating] &lt;b&gt;API&lt;/b&gt; &amp; co</title>"));
        assert!(!atom.contains("<img"));
    }
}
