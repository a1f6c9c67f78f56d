//! Outgoing posts: Slack incoming webhooks (Block Kit), Microsoft Teams Workflows (Adaptive
//! Card) and custom endpoints signed per Standard Webhooks; and the classification of each
//! answer into delivered / retry later / give up (security.md §6).

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::http::{retry_after, without_url};
use crate::signature::sign_standard;

/// What a post says about an incident.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// e.g. `incident.updated`.
    pub event_type: String,
    /// OpsLens incident id.
    pub incident_id: i64,
    /// Title.
    pub title: String,
    /// Severity spelling.
    pub severity: String,
    /// Status spelling.
    pub status: String,
    /// Free text (status update, suspect change).
    pub text: String,
    /// When.
    pub timestamp: chrono::DateTime<chrono::Utc>,
    /// Extra fields of the Standard Webhooks `data` (the hypothesis or action concerned, the
    /// changes as `{field: {from, to}}`), for consumers that act on more than the text.
    pub data: serde_json::Map<String, Value>,
}

/// Escapes the three characters Slack's mrkdwn treats as control (`&`, `<`, `>`), so a title
/// such as `<!channel> down` is shown, not obeyed.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack Block Kit message; `text` is the notification fallback Slack asks for.
pub fn slack_payload(n: &Notice) -> Value {
    let head = format!(
        "{} · INC-{} {}",
        n.severity.to_uppercase(),
        n.incident_id,
        n.title
    );
    let head: String = head.chars().take(150).collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": head}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Status:*\n{}", n.status)},
            {"type": "mrkdwn", "text": format!("*Severity:*\n{}", n.severity)},
        ]}),
    ];
    if !n.text.is_empty() {
        let t: String = n.text.chars().take(3000).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": t}}));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("Posted by OpsLens · {}", n.event_type)}
    ]}));
    json!({
        "text": format!("{} INC-{} {}: {}", n.severity.to_uppercase(), n.incident_id, slack_escape(&n.title), n.status),
        "blocks": blocks,
    })
}

/// Teams Workflows ("When a Teams webhook request is received") message with an Adaptive
/// Card 1.4 attachment; legacy Office 365 connectors are retired.
pub fn teams_payload(n: &Notice) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
               "text": format!("{} · INC-{} {}", n.severity.to_uppercase(), n.incident_id, n.title)}),
        json!({"type": "FactSet", "facts": [
            {"title": "Status", "value": n.status},
            {"title": "Severity", "value": n.severity},
            {"title": "Event", "value": n.event_type},
        ]}),
    ];
    if !n.text.is_empty() {
        body.push(json!({"type": "TextBlock", "wrap": true, "text": n.text}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

/// Standard Webhooks payload: `{"type", "timestamp", "data"}`.
pub fn webhook_payload(n: &Notice) -> Value {
    let mut data = json!({
        "incident_id": n.incident_id, "title": n.title, "severity": n.severity,
        "status": n.status, "text": n.text,
    });
    if let Some(d) = data.as_object_mut() {
        for (k, v) in &n.data {
            d.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    json!({
        "type": n.event_type,
        "timestamp": n.timestamp,
        "data": data,
    })
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx.
    Delivered(u16),
    /// Worth retrying: network error, 408, 429, 5xx, 3xx (redirects are not followed).
    Retry {
        /// Status, when there was an answer.
        status: Option<u16>,
        /// What failed.
        error: String,
        /// The endpoint's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: any other 4xx (`410 Gone` included).
    Permanent {
        /// Status.
        status: u16,
        /// What failed.
        error: String,
    },
}

/// Headers of a Standard Webhooks delivery (signature over this attempt's timestamp).
pub fn standard_headers(key: &[u8], msg_id: &str, now: i64, body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("webhook-id".into(), msg_id.into()),
        ("webhook-timestamp".into(), now.to_string()),
        (
            "webhook-signature".into(),
            sign_standard(key, msg_id, now, body),
        ),
    ]
}

/// POSTs `body` as JSON to `url` once and classifies the answer.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> SendOutcome {
    let mut req = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Err(e) => SendOutcome::Retry {
            status: None,
            error: without_url(&e),
            retry_after: None,
        },
        Ok(r) => {
            let status = r.status();
            let after = retry_after(r.headers());
            if status.is_success() {
                return SendOutcome::Delivered(status.as_u16());
            }
            let text = crate::http::body_excerpt(r).await;
            let error = format!("HTTP {}: {}", status.as_u16(), text.trim());
            let code = status.as_u16();
            if status.is_server_error() || code == 429 || code == 408 || status.is_redirection() {
                SendOutcome::Retry {
                    status: Some(code),
                    error,
                    retry_after: after,
                }
            } else {
                SendOutcome::Permanent {
                    status: code,
                    error,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            event_type: "incident.updated".into(),
            incident_id: 42,
            title: "API latency".into(),
            severity: "high".into(),
            status: "investigating".into(),
            text: "Suspect deploy <https://github.com/o/r/pull/2|#2>".into(),
            timestamp: chrono::Utc::now(),
            data: [(
                "changes".to_string(),
                json!({"status": {"from": "triggered", "to": "investigating"}}),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn slack_and_teams_bodies_have_the_documented_shape() {
        let s = slack_payload(&notice());
        assert!(s["text"].as_str().unwrap().contains("INC-42"));
        assert_eq!(s["blocks"][0]["type"], "header");
        assert_eq!(s["blocks"][1]["fields"][0]["type"], "mrkdwn");
        let t = teams_payload(&notice());
        assert_eq!(t["type"], "message");
        let card = &t["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["version"], "1.4");
        let w = webhook_payload(&notice());
        assert_eq!(w["type"], "incident.updated");
        assert_eq!(w["data"]["incident_id"], 42);
        assert_eq!(w["data"]["changes"]["status"]["to"], "investigating");
    }

    #[test]
    fn slack_mentions_in_data_are_shown_not_obeyed() {
        assert_eq!(
            slack_escape("<!channel> a&b > c"),
            "&lt;!channel&gt; a&amp;b &gt; c"
        );
        let mut n = notice();
        n.title = "<!here> checkout down".into();
        let s = slack_payload(&n);
        assert!(!s["text"].as_str().unwrap().contains("<!here>"), "{s}");
        // The header is plain_text: shown as typed.
        assert_eq!(
            s["blocks"][0]["text"]["text"],
            "HIGH · INC-42 <!here> checkout down"
        );
    }
}
