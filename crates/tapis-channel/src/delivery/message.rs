//! What delivery says and where it may connect: the resolver that keeps
//! webhooks off loopback and private addresses, an error's full chain as
//! one line for the attempt record, and the subject and text of a fallback
//! email.

use std::net::SocketAddr;

use serde_json::Value;
use tapis_core::EventType;
use tapis_core::channel::is_private_ip;

/// A resolver that drops loopback and private addresses.
pub(super) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !is_private_ip(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback or private addresses; refused"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub(super) fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Subject and plain-text body for an event.
pub(super) fn summary(
    payload: &Value,
    event_type: EventType,
    public_url: &str,
) -> (String, String) {
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let id = data.get("notice_id").and_then(Value::as_str).unwrap_or("?");
    let link = format!("{}/api/v1/notices/{id}", public_url.trim_end_matches('/'));
    let notice = data.pointer("/notice/payload");
    let mut text = String::new();
    let subject = match event_type {
        EventType::NoticeSubmitted | EventType::RepresentativeCopied => {
            if event_type == EventType::RepresentativeCopied {
                let why = match data.get("cause").and_then(Value::as_str) {
                    Some("deadline_missed") => "its deadline passed without a decision",
                    Some("unreachable") => {
                        "the platform's channel is unreachable (its webhook stopped answering)"
                    }
                    _ => "the platform's channel could not deliver it",
                };
                text.push_str(&format!("You are named as this platform's legal representative. This notice is copied to you because {why}.\n\n"));
            }
            let category = notice
                .and_then(|n| n.get("category"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            let urgency = notice
                .and_then(|n| n.get("urgency"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            text.push_str(&format!("A takedown notice was sent to you through tapis.\n\nNotice: {id}\nCategory: {category}\nUrgency: {urgency}\n"));
            if let Some(lb) = notice.and_then(|n| n.get("legal_basis")) {
                text.push_str(&format!(
                    "Legal basis: {}\n",
                    lb.get("reference").and_then(Value::as_str).unwrap_or("?")
                ));
            }
            if let Some(e) = notice
                .and_then(|n| n.get("explanation"))
                .and_then(Value::as_str)
            {
                text.push_str(&format!("\n{e}\n"));
            }
            if let Some(items) = notice
                .and_then(|n| n.get("items"))
                .and_then(Value::as_array)
            {
                text.push_str(&format!("\nItems ({}):\n", items.len()));
                for i in items {
                    text.push_str(&format!(
                        "  - {} {}\n",
                        i.get("kind").and_then(Value::as_str).unwrap_or("?"),
                        i.get("value").and_then(Value::as_str).unwrap_or("?")
                    ));
                }
            }
            if event_type == EventType::RepresentativeCopied {
                if let Some(due) = data.get("due_at").and_then(Value::as_str) {
                    text.push_str(&format!("Deadline: {due}\n"));
                }
                format!(
                    "[tapis] copy to the representative: takedown notice {id} ({category}, {urgency})"
                )
            } else {
                format!("[tapis] takedown notice {id} ({category}, {urgency})")
            }
        }
        other => {
            text.push_str(&format!("Event {other} for notice {id}.\n"));
            if let Some(due) = data.get("due_at").and_then(Value::as_str) {
                text.push_str(&format!("Deadline: {due}\n"));
            }
            format!("[tapis] {other} for notice {id}")
        }
    };
    if event_type == EventType::RepresentativeCopied {
        text.push_str(&format!(
            "\nThe signed notice is attached (notice-*.signed.json); verify it with tapis's public keys at {}/api/v1/keys.\nThe platform acts on it and acknowledges it through its own account; this copy is on the notice's record.\n",
            public_url.trim_end_matches('/')
        ));
        return (subject, text);
    }
    text.push_str(&format!(
        "\nThe signed notice is attached (notice-*.signed.json); verify it with tapis's public keys at {}/api/v1/keys.\nAct on it and acknowledge it at {link}\n\nThis email is a fallback: the webhook could not be used. Fetching the notice through the API records delivery.\n",
        public_url.trim_end_matches('/')
    ));
    (subject, text)
}

/// Subject and text of a contact's verification code.
pub(super) fn code_text(payload: &Value, code: &str) -> (String, String) {
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let platform = data.get("platform").and_then(Value::as_str).unwrap_or("?");
    let role = data.get("role").and_then(Value::as_str).unwrap_or("?");
    let expires = data
        .get("expires_at")
        .and_then(Value::as_str)
        .unwrap_or("?");
    (
        format!("[tapis] verification code for {platform}'s {role} contact"),
        format!(
            "{platform} named this address as its {role} contact in tapis, the authority's takedown channel.\n\n\
             Verification code: {code}\n\n\
             Give it to the person who set the contact (they enter it in tapis). It is good until {expires}.\n\
             If you did not expect this, ignore it: nothing is sent to this address until the code is entered.\n"
        ),
    )
}
