//! `GET /metrics`: Prometheus text exposition (0.0.4), or OpenMetrics 1.0
//! text when the scraper's `Accept` asks for it. See docs/metrics.md.
//!
//! A scrape is generated on a blocking thread (the shared maps are read
//! there, each under its lock once, so no runtime worker walks 10k
//! monitors) and streamed to the client in 64 KiB chunks, so its cost in
//! memory does not grow with the number of monitors.

pub mod collect;
pub mod exposition;
pub mod histogram;
pub mod process;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Semaphore, mpsc};

pub use exposition::{Format, Value};
use exposition::{Sink, Writer};

use crate::engine::App;
use crate::readmodel::ReadError;

/// Bytes per chunk of the response body.
const CHUNK: usize = 64 * 1024;
/// Chunks written ahead of a slow reader.
const CHUNKS_AHEAD: usize = 4;
/// Scrapes generated at once: two Prometheus replicas scraping the same
/// instance pass; a flood of requests gets 503 instead of N copies of the work.
static SCRAPES: Semaphore = Semaphore::const_new(2);

/// The whole text at once (tests, the benchmark).
pub fn render(app: &App, format: Format) -> Result<String, ReadError> {
    let mut w = Writer::new(format, CHUNK, Vec::new());
    collect::write_all(app, &mut w)?;
    Ok(w.finish().concat())
}

struct ChannelSink(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Sink for ChannelSink {
    fn send(&mut self, chunk: String) -> bool {
        self.0.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }
}

/// The `/metrics` handler.
pub async fn serve(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Ok(permit) = SCRAPES.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "two scrapes are already being generated; retry\n",
        )
            .into_response();
    };
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = Writer::new(format, CHUNK, ChannelSink(tx));
        let result = collect::write_all(&app, &mut w);
        let ChannelSink(tx) = w.finish();
        if let Err(e) = result {
            tracing::error!(error = %e, "/metrics: the scrape could not be completed");
            // Ends the body with an error: the connection is cut, and the
            // scraper sees a failed scrape rather than a partial one.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
