//! Retention on every backend, on the simulated clock: the scheduler
//! erases the public reports and appeals past their retention and keeps
//! those not yet due; the erased audit events keep their hashes and leaves
//! and a `retention.erased` tombstone names them; the real binary's `tapis
//! log verify` (against a checkpoint saved before) and `tapis audit verify`
//! pass after. Then, with the triggers dropped, a payload erased by hand
//! without a tombstone, or pointed at a tombstone that does not name it,
//! is reported as tampering. And a bad `[retention]` value stops the CLI
//! with an error naming its key.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use serde_json::{Value, json};
use sqlx::Row;
use tapis_core::appeal::{AppealDecision, AppealInput, NewAppeal};
use tapis_core::flag::{FlagInput, FlagLimits, NewFlag};
use tapis_core::retention::RetentionPolicy;
use tapis_core::role::Role;
use tapis_core::taxonomy::Taxonomy;
use tapis_core::{AppealId, ManualClock};
use tapis_store::testing::{
    TestDb, backends, bootstrap, clock_at, domain_notice, officer, party, principal, signed_in,
};
use tapis_store::{Backend, Store};

mod common;

use common::attacker::{run, text};

const DAY_SECS: i64 = 24 * 3600;

async fn public_flag(store: &Store, reasons: &str, contact: &str) -> tapis_store::FlagView {
    let input: FlagInput = serde_json::from_value(json!({
        "targets": [{"kind": "domain", "value": "scam.example"}],
        "category": "fraud",
        "reasons": reasons,
        "contact": contact,
    }))
    .expect("input");
    let flag = NewFlag::parse(
        input,
        &Taxonomy::bundled(),
        FlagLimits::PUBLIC,
        true,
        store.now(),
    )
    .expect("flag");
    store.submit_public_flag(flag).await.expect("submit")
}

/// A public appeal against the notice's first item, reviewed and rejected
/// by `approver`.
async fn decided_appeal(
    store: &Store,
    approver: &tapis_store::Principal,
    notice: &tapis_store::Notice,
    reason: &str,
) -> AppealId {
    let input: AppealInput = serde_json::from_value(json!({
        "notice_id": notice.id.to_string(),
        "item_id": notice.items[0].id.to_string(),
        "reason": reason,
    }))
    .expect("input");
    let new = NewAppeal::parse(input, None).expect("appeal");
    let a = store.submit_appeal(None, &new).await.expect("submit");
    store
        .start_appeal_review(approver, a.id)
        .await
        .expect("review");
    let d = AppealDecision::parse("rejected", "the item is unlawful", None).expect("decision");
    store
        .decide_appeal(approver, a.id, &d)
        .await
        .expect("decide");
    a.id
}

fn advance_days(clock: &ManualClock, days: i64) {
    clock.advance_millis(days * DAY_SECS * 1000);
}

/// The one event of `action` about a subject.
async fn event(store: &Store, subject: (&str, &str), action: &str) -> tapis_store::AuditEvent {
    let mut evs = store
        .events_for(subject.0, subject.1)
        .await
        .expect("events");
    evs.retain(|e| e.action == action);
    assert_eq!(evs.len(), 1, "one {action} about {subject:?}");
    evs.remove(0)
}

fn drop_audit_triggers(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => "DROP TRIGGER audit_events_no_change ON audit_events",
    }
}

fn verifies(out: &Output, says: &str) {
    assert!(out.status.success(), "{}", text(out));
    assert!(text(out).contains(says), "{says:?} in {}", text(out));
}

fn fails(out: &Output, says: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    for s in says {
        assert!(text(out).contains(s), "{s:?} in {}", text(out));
    }
}

fn log_verify(data: &Path, url: &str, vkey: &str, checkpoint: &Path) -> Output {
    let cp = checkpoint.to_str().expect("path");
    run(
        data,
        url,
        &["log", "verify", "--log-key", vkey, "--checkpoint", cp],
    )
}

#[tokio::test]
async fn retention_erases_what_is_due_and_the_log_still_verifies() {
    sqlx::any::install_default_drivers();
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let data = tempfile::tempdir().expect("tmp");
        let data = data.path();
        let clock = clock_at("2026-01-01T00:00:00Z");
        let store = db.open(Arc::new(clock.clone())).await;
        let (boot, admin) = bootstrap(&store).await;
        let platform = party(&store, &admin, "platform", "P").await;
        let officer = officer(&store, &boot, &admin).await;
        let (_, secret) = store
            .create_token_with(
                &admin.actor(),
                boot.authority.id,
                Role::Approver,
                "a",
                Some(&tapis_core::person::Person::parse("Reviewer").expect("person")),
                None,
                None,
            )
            .await
            .expect("token");
        let approver = principal(&store, &secret).await;
        let notice = store
            .create_notice(&officer, domain_notice(&store, platform.id, 0), None)
            .await
            .expect("notice")
            .notice;

        // day 0: a report and an appeal, decided
        let old_flag = public_flag(&store, "OLD-REPORT reasons", "old@example.org").await;
        store
            .reject_flags(&officer, &[old_flag.id], "not unlawful")
            .await
            .expect("reject");
        let old_appeal = decided_appeal(&store, &approver, &notice, "OLD-APPEAL my reason").await;
        let auditor = [Role::Auditor];
        signed_in(
            &store,
            boot.authority.id,
            "old.auditor",
            "Old Auditor",
            &auditor,
        )
        .await;
        // a checkpoint a witness or platform saved before any erasure
        let saved = data.join("before.checkpoint");
        std::fs::write(&saved, store.make_checkpoint().await.expect("cp")).expect("write");
        let vkey = store.log_vkey().to_string();

        // day 300: another of each, decided
        advance_days(&clock, 300);
        let new_flag = public_flag(&store, "NEW-REPORT reasons", "new@example.org").await;
        store
            .reject_flags(&officer, &[new_flag.id], "not unlawful")
            .await
            .expect("reject");
        let new_appeal = decided_appeal(&store, &approver, &notice, "NEW-APPEAL my reason").await;

        // a session last used on day 365 is not due (30 days) at day 370
        advance_days(&clock, 65);
        signed_in(
            &store,
            boot.authority.id,
            "new.auditor",
            "New Auditor",
            &auditor,
        )
        .await;

        // day 370: the defaults (180 and 365 days) make only the old due
        advance_days(&clock, 5);
        let policy = RetentionPolicy::default();
        assert!(store.log_retention_policy(&policy).await.expect("log"));
        assert!(!store.log_retention_policy(&policy).await.expect("again"));
        // bounded: one batch per run at most, the rest is left for the next
        let first = store.apply_retention(&policy, None, 1).await.expect("run");
        assert!(first.more, "{first:?}");
        assert_eq!(first.records.values().sum::<u64>(), 1, "{first:?}");
        // kinds with nothing left due spend no budget: the next run goes on
        let second = store.apply_retention(&policy, None, 1).await.expect("run");
        assert_eq!(second.records.values().sum::<u64>(), 1, "{second:?}");
        assert_ne!(first.records.keys().next(), second.records.keys().next());
        let scheduler = tapis_channel::Scheduler::new(store.clone())
            .with_retention(policy.clone(), std::time::Duration::from_secs(3600));
        scheduler.run_once().await.expect("run");

        let flag_id = |f: &tapis_store::FlagView| f.id.to_string();
        let submitted_old = event(&store, ("flag", &flag_id(&old_flag)), "flag.submitted").await;
        let submitted_new = event(&store, ("flag", &flag_id(&new_flag)), "flag.submitted").await;
        assert_eq!(
            submitted_old.after,
            Value::Null,
            "the old report's payload is erased"
        );
        assert_eq!(
            submitted_new.after["reasons"], "NEW-REPORT reasons",
            "not yet due"
        );
        let received_old = event(
            &store,
            ("appeal", &old_appeal.to_string()),
            "appeal.received",
        )
        .await;
        let received_new = event(
            &store,
            ("appeal", &new_appeal.to_string()),
            "appeal.received",
        )
        .await;
        assert_eq!(received_old.after, Value::Null);
        assert!(received_new.after["reason_sha256"].is_string());
        // the erased events keep their hashes
        assert_eq!(
            store.audit_hash_at(submitted_old.seq).await.expect("hash"),
            Some(submitted_old.hash.clone())
        );

        // the records themselves
        let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
        let row = |sql: &'static str, id: String| {
            let pool = pool.clone();
            async move {
                sqlx::query(sql)
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .expect("row")
            }
        };
        let q = "SELECT reasons, contact, erased_at FROM flags WHERE id = $1";
        let old = row(q, flag_id(&old_flag)).await;
        assert_eq!(old.try_get::<String, _>("reasons").expect("r"), "");
        assert_eq!(
            old.try_get::<Option<String>, _>("contact").expect("c"),
            None
        );
        assert!(
            old.try_get::<Option<i64>, _>("erased_at")
                .expect("e")
                .is_some()
        );
        let new = row(q, flag_id(&new_flag)).await;
        assert_eq!(
            new.try_get::<String, _>("reasons").expect("r"),
            "NEW-REPORT reasons"
        );
        assert!(
            new.try_get::<Option<String>, _>("contact")
                .expect("c")
                .is_some()
        );
        let q = "SELECT reason, state FROM appeals WHERE id = $1";
        let old = row(q, old_appeal.to_string()).await;
        assert_eq!(old.try_get::<String, _>("reason").expect("r"), "");
        assert_eq!(
            old.try_get::<String, _>("state").expect("s"),
            "rejected",
            "the outcome stays"
        );
        let new = row(q, new_appeal.to_string()).await;
        assert_eq!(
            new.try_get::<String, _>("reason").expect("r"),
            "NEW-APPEAL my reason"
        );

        // the tombstones: one leaf each, naming the erased event and record
        let tomb = event(&store, ("retention", "public_flag"), "retention.erased").await;
        assert_eq!(tomb.after["leaves"][0]["seq"], submitted_old.seq);
        assert_eq!(tomb.after["leaves"][0]["event_hash"], submitted_old.hash);
        assert_eq!(tomb.after["records"], json!([flag_id(&old_flag)]));
        assert_eq!(tomb.after["policy_sha256"], policy.sha256());
        let sessions = event(&store, ("retention", "web_session"), "retention.erased").await;
        assert_eq!(sessions.after["count"], 1);
        assert_eq!(
            sessions.after["records"],
            json!([]),
            "session ids are not listed"
        );
        let left: i64 = sqlx::query("SELECT COUNT(*) AS n FROM web_sessions")
            .fetch_one(&pool)
            .await
            .expect("count")
            .try_get("n")
            .expect("n");
        assert_eq!(left, 1, "the session used five days ago stays");
        let appeal_tomb = event(&store, ("retention", "personal_appeal"), "retention.erased").await;
        assert_eq!(appeal_tomb.after["leaves"][0]["seq"], received_old.seq);
        let erased_by: Option<i64> =
            sqlx::query("SELECT erased_by FROM audit_events WHERE seq = $1")
                .bind(submitted_old.seq)
                .fetch_one(&pool)
                .await
                .expect("row")
                .try_get("erased_by")
                .expect("col");
        assert_eq!(erased_by, Some(tomb.seq));

        // the triggers let the application erase only what a tombstone names
        for sql in [
            format!(
                "UPDATE audit_events SET before = 'null', after = 'null', erased_by = {} WHERE seq = {}",
                tomb.seq, submitted_new.seq
            ),
            format!(
                "UPDATE audit_events SET before = 'null', after = 'null' WHERE seq = {}",
                submitted_new.seq
            ),
            format!(
                "UPDATE audit_events SET erased_by = NULL WHERE seq = {}",
                submitted_old.seq
            ),
        ] {
            assert!(store.raw_execute(&sql).await.is_err(), "refused: {sql}");
        }

        // what a witness checks: the new checkpoint is consistent with the
        // one it saw before the erasure
        let before = tapis_core::tlog::note::Checkpoint::parse_body(
            &tapis_core::tlog::note::Note::parse(&std::fs::read_to_string(&saved).expect("read"))
                .expect("note")
                .text,
        )
        .expect("checkpoint");
        let after_text = store.make_checkpoint().await.expect("cp");
        let after = tapis_core::tlog::note::Checkpoint::parse_body(
            &tapis_core::tlog::note::Note::parse(&after_text)
                .expect("note")
                .text,
        )
        .expect("checkpoint");
        assert!(after.size > before.size);
        let proof = store
            .consistency_proof(before.size, after.size)
            .await
            .expect("proof");
        tapis_core::tlog::verify_consistency(
            before.size,
            after.size,
            &proof,
            &before.root,
            &after.root,
        )
        .expect("the log after retention extends the log before it");

        // the real binary: both verifications pass, and say why
        let log = log_verify(data, &db.url, &vkey, &saved);
        let audit = run(data, &db.url, &["audit", "verify"]);
        verifies(&log, "consistent with the log");
        verifies(&log, "2 payloads erased by retention");
        verifies(&audit, "audit chain intact");
        verifies(&audit, "2 payloads erased by retention");

        // an attacker with the database: triggers dropped
        store
            .raw_execute(drop_audit_triggers(backend))
            .await
            .expect("drop");
        // (a) a payload erased by hand with no tombstone
        store
            .raw_execute(&format!(
                "UPDATE audit_events SET before = 'null', after = 'null' WHERE seq = {}",
                submitted_new.seq
            ))
            .await
            .expect("erase");
        let at = format!("event {}", submitted_new.seq);
        fails(
            &log_verify(data, &db.url, &vkey, &saved),
            &[&format!("(event {}) as stored differs", submitted_new.seq)],
        );
        fails(&run(data, &db.url, &["audit", "verify"]), &[&at, "altered"]);
        // (b) the same, pointed at a genuine tombstone that does not name it
        store
            .raw_execute(&format!(
                "UPDATE audit_events SET erased_by = {} WHERE seq = {}",
                tomb.seq, submitted_new.seq
            ))
            .await
            .expect("point");
        fails(
            &log_verify(data, &db.url, &vkey, &saved),
            &[&at, "tampering, not retention"],
        );
        fails(
            &run(data, &db.url, &["audit", "verify"]),
            &[&at, "tampering, not retention"],
        );

        pool.close().await;
        store.close().await;
        db.cleanup().await;
    }
}

#[test]
fn a_bad_retention_value_stops_the_cli_naming_its_key() {
    let data = tempfile::tempdir().expect("tmp");
    let config = data.path().join("tapis.toml");
    for (value, says) in [
        ("public_flag_days = 0", "retention.public_flag_days"),
        ("invitation_days = \"never\"", "retention.invitation_days"),
    ] {
        std::fs::write(&config, format!("[retention]\n{value}\n")).expect("write");
        let url = format!("sqlite://{}", data.path().join("t.db").display());
        let out = common::cli(data.path(), &url)
            .arg("--config")
            .arg(&config)
            .args(["audit", "verify"])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(says), "{says} in {}", text(&out));
    }
}
