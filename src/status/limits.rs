//! How much the write tools may store and the public page may carry.
//!
//! Incidents and windows are written through MCP and served to anyone who
//! reaches `/status`, so each is bounded twice: what is kept (lengths and
//! counts, checked by the tools) and what the page shows of it. The worst
//! page is then about 250,000 characters of text, whatever was written.
//! docs/limits.md lists them with their errors.

/// Longest incident or window title: a headline.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest incident update or window message.
pub const MAX_MESSAGE_CHARS: usize = 2_000;
/// Monitors, and groups, one incident or window may name.
pub const MAX_SCOPE_ITEMS: usize = 100;
/// Incidents kept. Opening one more deletes the oldest resolved incident;
/// when every kept incident is open, `create_incident` is refused.
pub const MAX_INCIDENTS: usize = 200;
/// Updates in one incident's timeline, its creation included. Past it,
/// `update_incident` is refused: resolve it and open a new incident.
pub const MAX_UPDATES: usize = 50;
/// Maintenance windows kept. Scheduling one more deletes the window that
/// ended first; when none has ended, `create_maintenance` is refused.
pub const MAX_WINDOWS: usize = 200;
/// Longest window (as long as any duration maintenant accepts).
pub const MAX_WINDOW: std::time::Duration = crate::duration::MAX.0;

/// Open incidents the public page and `/status.json` carry, newest first.
pub const PAGE_ACTIVE_INCIDENTS: usize = 10;
/// Recently resolved incidents they carry.
pub const PAGE_RECENT_INCIDENTS: usize = 10;
/// Newest updates of each incident they carry (and the Atom feed).
pub const PAGE_UPDATES: usize = 5;
/// Ongoing windows, and upcoming windows, they carry (soonest first).
pub const PAGE_WINDOWS: usize = 10;
/// Entries of the Atom feed.
pub const FEED_ENTRIES: usize = 20;

/// `field` has at most `max` characters, else an error naming the bound.
pub fn check_chars(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.len() <= max || v.chars().nth(max).is_none() {
        return Ok(());
    }
    Err(format!(
        "{field} is {} characters long: at most {max}",
        v.chars().count()
    ))
}

/// `field` lists at most `max` items.
pub fn check_items<T>(field: &str, v: &[T], max: usize) -> Result<(), String> {
    if v.len() > max {
        return Err(format!("{field} has {} entries: at most {max}", v.len()));
    }
    Ok(())
}
