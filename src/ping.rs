//! The ping endpoints jobs call: `/ping/{id}` (success), `/ping/{id}/start`,
//! `/ping/{id}/fail` and `/ping/{id}/{exit_code}` (0 is success, 1..=255 a
//! failure), by GET, POST or HEAD. `{id}` is the heartbeat's name, or its
//! token when one is declared (the name then answers 404).
//!
//! With the global ping key set (`MAINTENANT_PING_KEY`, see [`crate::pingkey`]),
//! `/ping/{key}/{name}` (and `.../start`, `.../fail`, `.../{exit_code}`)
//! pings any heartbeat by name, `/ping/{token}` still works, and
//! `/ping/{name}` answers 404. A token equal to the key is read as the key.
//!
//! A 200 answer means the ping is on disk (see `heartbeat::hub`). A POST body
//! is kept as the run's output, cut to 10 KB; bodies over 1 MiB get 413.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use time::OffsetDateTime;

use crate::engine::App;
use crate::heartbeat::{PING_BODY_KEEP, PING_BODY_MAX, Ping, PingError, PingKind};

/// The ping routes (axum answers HEAD through the GET handler, without a body).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/ping/{id}", get(success).post(success))
        .route("/ping/{id}/{action}", get(action).post(action))
        .route(
            "/ping/{key}/{name}/{action}",
            get(keyed_action).post(keyed_action),
        )
}

/// Which heartbeat a ping path names.
enum Target<'a> {
    /// `/ping/{id}`: a token, or (without a ping key) a name.
    Id(&'a str),
    /// `/ping/{key}/{name}`, the key checked.
    Name(&'a str),
    /// `/ping/{key}/{name}` with a wrong key, or no key set.
    Refused,
}

/// `/ping/{a}/{b}`: the keyed success URL when `a` is the ping key, else
/// `/ping/{id}/{action}`.
fn is_keyed(app: &App, first: &str) -> bool {
    app.ping_key.as_ref().is_some_and(|k| k.matches(first))
}

async fn success(State(app): State<Arc<App>>, Path(id): Path<String>, body: Body) -> Response {
    record(&app, Target::Id(&id), PingKind::Success, None, body).await
}

async fn action(
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Response {
    if is_keyed(&app, &id) {
        return record(&app, Target::Name(&action), PingKind::Success, None, body).await;
    }
    let (kind, code) = match parse_action(&action) {
        Ok(k) => k,
        // With a ping key, `/ping/{x}/{name}` is a keyed URL with a wrong
        // key: the same 404 as every refused ping, not a hint about actions.
        Err(_) if app.ping_key.is_some() => {
            return record(&app, Target::Refused, PingKind::Success, None, body).await;
        }
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    record(&app, Target::Id(&id), kind, code, body).await
}

async fn keyed_action(
    State(app): State<Arc<App>>,
    Path((key, name, action)): Path<(String, String, String)>,
    body: Body,
) -> Response {
    let target = if is_keyed(&app, &key) {
        Target::Name(&name)
    } else {
        Target::Refused
    };
    let (kind, code) = match parse_action(&action) {
        Ok(k) => k,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    record(&app, target, kind, code, body).await
}

/// `start`, `fail`, or an exit code 0..=255.
pub fn parse_action(action: &str) -> Result<(PingKind, Option<u8>), String> {
    match action {
        "start" => Ok((PingKind::Start, None)),
        "fail" => Ok((PingKind::Fail, None)),
        s if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<u8>() {
                Ok(0) => Ok((PingKind::Success, Some(0))),
                Ok(c) => Ok((PingKind::Fail, Some(c))),
                Err(_) => Err(format!("exit code {s} is out of range: use 0..255")),
            }
        }
        s => Err(format!(
            "unknown ping action {s:?}: use /start, /fail or an exit code 0..255"
        )),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "ok": false, "error": message }))).into_response()
}

async fn record(
    app: &App,
    target: Target<'_>,
    kind: PingKind,
    exit_code: Option<u8>,
    body: Body,
) -> Response {
    let key = match target {
        // With a ping key, names are no longer a route: only tokens are.
        Target::Id(id) if app.ping_key.is_some() => app.heartbeats.route_token(id),
        Target::Id(id) => app.heartbeats.route(id),
        Target::Name(name) => app.heartbeats.route_name(name),
        Target::Refused => None,
    };
    // The same answer for an unknown name, a wrong token and a wrong key: a
    // 404 must not tell a guesser that a name exists behind a secret.
    let Some(key) = key else {
        return error(
            StatusCode::NOT_FOUND,
            "no heartbeat answers to this ping URL; check the name, token or ping key (list_heartbeats shows each ping_url)",
        );
    };
    let at = OffsetDateTime::now_utc();
    let bytes = match axum::body::to_bytes(body, PING_BODY_MAX).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ping body over 1 MiB: send at most 10 KB of output (only that much is kept)",
            );
        }
    };
    let body = (!bytes.is_empty()).then(|| {
        let kept = &bytes[..bytes.len().min(PING_BODY_KEEP)];
        String::from_utf8_lossy(kept).into_owned()
    });
    let ping = Ping {
        at,
        kind,
        exit_code,
        body,
    };
    match app.heartbeats.ping(key, ping).await {
        Ok(ack) => (
            StatusCode::OK,
            Json(json!({ "ok": true, "id": ack.id, "ping": kind, "status": ack.status })),
        )
            .into_response(),
        Err(PingError::NotFound) => error(
            StatusCode::NOT_FOUND,
            "no heartbeat answers to this ping URL; check the name or token (list_heartbeats shows each ping_url)",
        ),
        Err(e @ PingError::Storage(_)) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_exit_codes() {
        assert_eq!(parse_action("start"), Ok((PingKind::Start, None)));
        assert_eq!(parse_action("fail"), Ok((PingKind::Fail, None)));
        assert_eq!(parse_action("0"), Ok((PingKind::Success, Some(0))));
        assert_eq!(parse_action("255"), Ok((PingKind::Fail, Some(255))));
        assert_eq!(parse_action("1"), Ok((PingKind::Fail, Some(1))));
        for bad in ["256", "-1", "+1", "1000", "abc", "", "3.0"] {
            assert!(parse_action(bad).is_err(), "{bad:?}");
        }
    }
}
