//! A notice's record on its page: the timeline (its audit events), the
//! signed receipts and answers kept with it, each checked against the
//! published signing keys as the page is drawn (so "verified" means the
//! signature matched, not that tapis says so), and its deliveries with
//! their attempts. Anyone who may open the notice sees these, as the API's
//! `/timeline` and `/deliveries` show them.

use maud::{Markup, html};
use serde_json::Value;
use tapis_store::Notice;

use crate::layout::{badge, maybe_time, time};
use crate::session::Ctx;

/// What a receipt's signature check came to.
fn check(envelope: &Value, keys: &[(String, String)]) -> Result<String, String> {
    tapis_core::sign::open_envelope(envelope, keys)
        .map(|_| {
            envelope
                .get("kid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .map_err(|e| e.to_string())
}

fn receipt_kind(envelope: &Value) -> String {
    let p = envelope.get("payload").unwrap_or(&Value::Null);
    ["type", "kind", "event"]
        .iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str))
        .unwrap_or("receipt")
        .replace(['_', '.'], " ")
}

pub async fn section(cx: &Ctx, n: &Notice) -> Markup {
    let store = &cx.state.store;
    let events = store
        .events_for("notice", &n.id.to_string())
        .await
        .unwrap_or_default();
    let receipts = store.receipts(n.id).await.unwrap_or_default();
    let keys: Vec<(String, String)> = store
        .public_keys()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.kid, k.public_key))
        .collect();
    let deliveries = store.deliveries(n.id).await.unwrap_or_default();
    html! {
        h2 id="timeline" { (cx.t("record-timeline")) }
        @if events.is_empty() {
            p.muted { (cx.t("record-none")) }
        } @else {
            ol.timeline {
                @for e in &events {
                    li {
                        (time(cx, e.at)) " · " strong { (e.action) } " · "
                        (e.actor.get("label").and_then(Value::as_str).unwrap_or("system"))
                        " " small.muted { "#" (e.seq) }
                    }
                }
            }
        }
        h2 id="receipts" { (cx.t("record-receipts")) }
        @if receipts.is_empty() {
            p.muted { (cx.t("record-none")) }
        } @else {
            p.muted { (cx.t("record-receipts-help")) }
            ul.receipts {
                @for r in &receipts {
                    li {
                        (receipt_kind(r)) " · "
                        @match check(r, &keys) {
                            Ok(kid) => { span.badge.green { (cx.t("record-verified")) } " " small.muted { (cx.tf("record-key", &[("kid", &kid)])) } }
                            Err(why) => { span.badge.red { (cx.t("record-not-verified")) } " " small { (why) } }
                        }
                        details {
                            summary { (cx.t("record-show")) }
                            pre { (serde_json::to_string_pretty(r).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        h2 id="deliveries" { (cx.t("record-deliveries")) }
        @if deliveries.is_empty() {
            p.muted { (cx.t("record-none")) }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { (cx.t("record-event")) }
                    th scope="col" { (cx.t("record-channel")) }
                    th scope="col" { (cx.t("col-state")) }
                    th scope="col" { (cx.t("record-attempts")) }
                    th scope="col" { (cx.t("col-delivered")) }
                    th scope="col" { (cx.t("record-next")) }
                    th scope="col" { (cx.t("record-error")) }
                } }
                tbody {
                    @for d in &deliveries {
                        tr {
                            td { (d.event_type) }
                            td { (d.channel) }
                            td { (badge(cx, &d.state)) }
                            td.num { (d.attempts) }
                            td { (maybe_time(cx, d.delivered_at)) }
                            td { @if d.state != "delivered" { (maybe_time(cx, d.next_attempt_at)) } }
                            td { @if let Some(e) = &d.last_error { small { (e) } } }
                        }
                    }
                }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tapis_core::sign::Signer;

    #[test]
    fn a_receipt_verifies_against_its_key_and_an_altered_one_does_not() {
        let signer = Signer::from_seed([9; 32]);
        let keys = vec![(signer.kid().to_owned(), signer.public_key_b64())];
        let mut receipt = signer
            .seal(json!({"type": "notice.acknowledged", "notice_id": "n1"}))
            .expect("seal");
        assert_eq!(check(&receipt, &keys), Ok(signer.kid().to_owned()));
        assert_eq!(receipt_kind(&receipt), "notice acknowledged");
        receipt["payload"]["notice_id"] = json!("n2");
        assert!(check(&receipt, &keys).is_err_and(|e| e.contains("does not match")));
        let other = Signer::from_seed([7; 32]);
        let receipt = other.seal(json!({"type": "x"})).expect("seal");
        assert!(check(&receipt, &keys).is_err_and(|e| e.contains("no public key")));
    }
}
