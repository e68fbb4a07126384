//! Notifications: which channels an alert goes to, what each channel's body
//! looks like, and delivery with bounded retries and exponential backoff.
//!
//! Routing rule: a channel receives an alert when
//! 1. the monitor's `alert.channels` is empty or names the channel, and
//! 2. the channel's `severities` is empty or holds the alert's severity, and
//! 3. the channel's `groups` is empty or holds the monitor's group.
//!
//! A resolve goes where the raise went (the same rule with the alert's last severity).

use hmac::{KeyInit, Mac};
use serde_json::json;
use time::OffsetDateTime;

use super::store::Delivery;
use super::{Alert, AlertEventKind};
use crate::config::model::{ChannelSpec, ChannelType, Severity};

pub const SIGNATURE_HEADER: &str = "X-Maintenant-Signature";

pub fn routes<'a>(alert: &Alert, channels: &'a [ChannelSpec]) -> Vec<&'a ChannelSpec> {
    channels
        .iter()
        .filter(|c| alert.channels.is_empty() || alert.channels.contains(&c.name))
        .filter(|c| c.severities.is_empty() || c.severities.contains(&alert.severity))
        .filter(|c| {
            c.groups.is_empty()
                || alert
                    .group
                    .as_deref()
                    .is_some_and(|g| c.groups.iter().any(|cg| cg.eq_ignore_ascii_case(g)))
        })
        .collect()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn headline(alert: &Alert, event: AlertEventKind) -> String {
    let what = match event {
        AlertEventKind::Raised => "ALERT",
        AlertEventKind::Escalated => "ESCALATED",
        AlertEventKind::Reminder => "STILL ACTIVE",
        AlertEventKind::Acknowledged => "ACKNOWLEDGED",
        AlertEventKind::Resolved => "RESOLVED",
    };
    format!(
        "[{what}] [{}] {}: {}",
        severity_word(alert.severity),
        alert.alert_type.as_str(),
        alert.message
    )
}

/// The request body (and content type) for a channel.
pub fn body(kind: ChannelType, alert: &Alert, event: AlertEventKind) -> (Vec<u8>, &'static str) {
    let json = |v: serde_json::Value| (serde_json::to_vec(&v).expect("json"), "application/json");
    match kind {
        ChannelType::Webhook => json(json!({
            "event": event,
            "alert": alert,
            "sent_at": OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })),
        ChannelType::Slack => json(json!({ "text": headline(alert, event) })),
        ChannelType::Discord => json(json!({ "content": headline(alert, event) })),
        ChannelType::Ntfy => (
            format!("{}\n{}", alert.message, alert.entity).into_bytes(),
            "text/plain",
        ),
    }
}

/// Send one notification, retrying `channel.retries` times with exponential
/// backoff. Always returns what happened, so it can be recorded.
pub async fn deliver(
    client: &reqwest::Client,
    channel: &ChannelSpec,
    alert: &Alert,
    event: AlertEventKind,
) -> Delivery {
    let (payload, content_type) = body(channel.kind, alert, event);
    let mut delivery = Delivery {
        channel: channel.name.clone(),
        event,
        at: OffsetDateTime::now_utc(),
        attempts: 0,
        ok: false,
        status_code: None,
        error: None,
    };
    let mut backoff = channel.retry_backoff.std();
    for attempt in 0..=channel.retries {
        if attempt > 0 {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
        delivery.attempts = attempt + 1;
        let mut req = client
            .post(&channel.url)
            .timeout(channel.timeout.std())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("X-Maintenant-Event", format!("{event:?}").to_lowercase())
            .body(payload.clone());
        for (k, v) in &channel.headers {
            req = req.header(k, v);
        }
        if channel.kind == ChannelType::Webhook
            && let Some(secret) = &channel.secret
        {
            req = req.header(SIGNATURE_HEADER, signature(secret, &payload));
        }
        if channel.kind == ChannelType::Ntfy {
            req = req
                .header(
                    "Title",
                    format!("{} {}", alert.alert_type.as_str(), alert.entity),
                )
                .header(
                    "Priority",
                    match alert.severity {
                        Severity::Critical => "urgent",
                        Severity::Warning => "high",
                        Severity::Info => "default",
                    },
                )
                .header("Tags", format!("{event:?}").to_lowercase());
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                delivery.status_code = Some(r.status().as_u16());
                delivery.ok = true;
                delivery.error = None;
                return delivery;
            }
            Ok(r) => {
                delivery.status_code = Some(r.status().as_u16());
                delivery.error = Some(format!("HTTP {}", r.status()));
            }
            Err(e) => {
                delivery.status_code = None;
                delivery.error = Some(if e.is_timeout() {
                    format!("timeout after {}", channel.timeout)
                } else if e.is_connect() {
                    format!("cannot connect: {e}")
                } else {
                    e.to_string()
                });
            }
        }
    }
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;
    use crate::alerts::{AlertStatus, AlertType};
    use crate::monitor::MonitorKind;

    fn alert() -> Alert {
        let now = OffsetDateTime::now_utc();
        Alert {
            id: "7".into(),
            alert_type: AlertType::EndpointDown,
            severity: Severity::Critical,
            status: AlertStatus::Active,
            entity: "endpoint/api".into(),
            source: MonitorKind::Endpoint,
            group: Some("core".into()),
            message: "endpoint/api is down: HTTP 503".into(),
            threshold_days: None,
            fired_at: now,
            updated_at: now,
            resolved_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            note: None,
            channels: vec![],
            last_notified_at: None,
            silenced: false,
            silenced_by: None,
            history: vec![],
        }
    }

    fn channel(name: &str, severities: Vec<Severity>, groups: Vec<&str>) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            kind: ChannelType::Webhook,
            url: "http://127.0.0.1:9/".into(),
            secret: None,
            headers: Default::default(),
            severities,
            groups: groups.into_iter().map(String::from).collect(),
            retries: 0,
            retry_backoff: crate::duration::Duration::from_millis(1),
            timeout: crate::duration::Duration::from_millis(100),
        }
    }

    #[test]
    fn slack_discord_and_webhook_bodies() {
        let a = alert();
        let (b, ct) = body(ChannelType::Slack, &a, AlertEventKind::Raised);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(ct, "application/json");
        assert_eq!(
            v["text"],
            "[ALERT] [critical] endpoint_down: endpoint/api is down: HTTP 503"
        );
        let (b, _) = body(ChannelType::Discord, &a, AlertEventKind::Resolved);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["content"].as_str().unwrap().starts_with("[RESOLVED]"));
        let (b, _) = body(ChannelType::Webhook, &a, AlertEventKind::Escalated);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["alert"]["id"].as_str()),
            (Some("escalated"), Some("7"))
        );
        let (b, ct) = body(ChannelType::Ntfy, &a, AlertEventKind::Raised);
        assert_eq!(ct, "text/plain");
        assert!(
            String::from_utf8(b)
                .unwrap()
                .starts_with("endpoint/api is down")
        );
    }

    #[test]
    fn routing_by_monitor_channels_severity_and_group() {
        let mut a = alert();
        let chans = vec![
            channel("all", vec![], vec![]),
            channel("warn-only", vec![Severity::Warning], vec![]),
            channel("core", vec![], vec!["CORE"]),
            channel("db", vec![], vec!["db"]),
        ];
        let names = |a: &Alert| -> Vec<String> {
            routes(a, &chans)
                .into_iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names(&a), ["all", "core"]);
        a.channels = vec!["core".into(), "warn-only".into()];
        assert_eq!(names(&a), ["core"], "the monitor's list, still filtered");
        a.group = None;
        a.channels.clear();
        assert_eq!(
            names(&a),
            ["all"],
            "group filters skip monitors without a group"
        );
    }
}
