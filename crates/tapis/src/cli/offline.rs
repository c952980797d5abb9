//! The commands that work on tapis's database directly, with or without a
//! server running: `tapis import`, `tapis token create|revoke|list`,
//! `tapis audit verify` and `tapis receipt verify` (which reads the
//! database only for its keys).
//! Each opens the store from the settings, does one thing, prints what it
//! did and returns the exit status its help promises.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tapis_core::audit::Actor;
use tapis_core::role::Role;
use tapis_core::{PartyId, Timestamp};

use super::{ImportCommand, open};
use crate::config::Settings;

pub(super) async fn receipt_verify(
    settings: &Settings,
    file: &Path,
    public_key: Option<String>,
    keys_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let envelope: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    // accept the whole acknowledgement response too
    let envelope = envelope.get("receipt").cloned().unwrap_or(envelope);
    let keys: Vec<(String, String)> = if let Some(k) = public_key {
        let key = tapis_core::sign::parse_public_key("--public-key", &k)?;
        vec![(tapis_core::sign::key_id(key.as_bytes()), k)]
    } else if let Some(path) = keys_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let list: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a keys list", path.display()))?;
        list.iter()
            .filter_map(|k| {
                Some((
                    k.get("kid")?.as_str()?.to_owned(),
                    k.get("public_key")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    } else {
        let store = open(settings).await?;
        let keys = store
            .public_keys()
            .await?
            .into_iter()
            .map(|k| (k.kid, k.public_key))
            .collect();
        store.close().await;
        keys
    };
    match tapis_core::sign::open_envelope(&envelope, &keys) {
        Ok(payload) => {
            let kid = envelope["kid"].as_str().unwrap_or("?");
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
            match payload.get("type").and_then(serde_json::Value::as_str) {
                Some("tapis.receipt.v1") => say!(
                    "receipt valid: notice {} (content SHA-256 {}) acknowledged by {} ({}) at {}, signed by {kid}",
                    text(&payload["notice_id"]),
                    text(&payload["notice_sha256"]),
                    text(&payload["acknowledged_by"]["party_name"]),
                    text(&payload["acknowledged_by"]["token_label"]),
                    text(&payload["acknowledged_at"]),
                ),
                Some("tapis.decision.v1") => say!(
                    "receipt valid: decision {} on item {} of notice {} by {} ({}) at {}, signed by {kid}",
                    text(&payload["decision"]),
                    text(&payload["item_id"]),
                    text(&payload["notice_id"]),
                    text(&payload["decided_by"]["party_name"]),
                    text(&payload["decided_by"]["token_label"]),
                    text(&payload["decided_at"]),
                ),
                _ => {
                    say!("INVALID: the signature is good but this is not a tapis receipt");
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say!("INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

pub(super) async fn import(
    settings: &Settings,
    command: ImportCommand,
) -> anyhow::Result<ExitCode> {
    use tapis_core::order::{NewOrder, OrderAction, OrderTarget};
    let (args, kind) = match &command {
        ImportCommand::Rpz { args, .. } => (args, "rpz"),
        ImportCommand::Domains { args, .. } => (args, "domains"),
    };
    let taxonomy = tapis_core::taxonomy::Taxonomy::bundled();
    let category = taxonomy.category(&args.category)?.id.clone();
    let legal_basis = tapis_core::notice::LegalBasis {
        reference: tapis_core::party::bounded_text("--legal-basis", &args.legal_basis, 1, 300)?,
        text: tapis_core::party::bounded_text("--legal-text", &args.legal_text, 1, 20_000)?,
    };
    if !(1..=180).contains(&args.days) || !(1..=args.days).contains(&args.review_days) {
        bail!("--days must be 1 to 180 and --review-days 1 to --days");
    }
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    bar.set_message(format!("reading {}", args.file.display()));
    let reader = std::io::BufReader::new(file);
    let inc = |n: usize| bar.inc(n as u64);
    let parsed = match &command {
        ImportCommand::Rpz { origin, .. } => tapis_dns::import::parse_rpz(reader, origin, inc)?,
        ImportCommand::Domains {
            action,
            include_subdomains,
            ..
        } => tapis_dns::import::parse_domains(
            reader,
            OrderAction::parse(action)?,
            *include_subdomains,
            inc,
        )?,
    };
    bar.finish_and_clear();
    say!(
        "{}: {} entries accepted ({} names), {} duplicates, {} rejected{}",
        args.file.display(),
        parsed.accepted,
        parsed.names(),
        parsed.duplicates,
        parsed.rejected.len(),
        if parsed.widened > 0 {
            format!(
                ", {} wildcard-only entries widened to their name",
                parsed.widened
            )
        } else {
            String::new()
        }
    );
    for (line, reason) in parsed.rejected.iter().take(20) {
        say!("  line {line}: {reason}");
    }
    if parsed.rejected.len() > 20 {
        say!("  … and {} more rejected lines", parsed.rejected.len() - 20);
    }
    if parsed.names() == 0 {
        say!("nothing to import");
        return Ok(ExitCode::from(1));
    }
    let store = open(settings).await?;
    let now = store.now();
    let effective_at = match &args.effective_at {
        Some(t) => Timestamp::parse("--effective-at", t)?,
        None => now,
    };
    let orders: Vec<NewOrder> = parsed
        .targets
        .into_iter()
        .map(|(action, names)| NewOrder {
            targets: names
                .into_iter()
                .map(|(name, include_subdomains)| OrderTarget {
                    name,
                    include_subdomains,
                })
                .collect(),
            action,
            category: category.clone(),
            legal_basis: legal_basis.clone(),
            explanation: Some(format!("imported from {} ({kind})", args.file.display())),
            emergency: false,
            effective_at,
            expires_at: effective_at.plus_secs(args.days * 86_400),
            review_at: effective_at.plus_secs(args.review_days * 86_400),
            notices: vec![],
            escalation_id: None,
        })
        .collect();
    let authority = store
        .list_parties(Some(tapis_core::party::PartyKind::Authority))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no authority party yet: start tapis serve once first"))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let label = format!("tapis import (OS user {user})");
    let proposer = tapis_store::Proposer {
        party_id: authority.id.to_string(),
        token_id: "cli:import".into(),
        label: label.clone(),
        actor: Actor {
            kind: "cli",
            party_id: Some(authority.id.to_string()),
            token_id: None,
            label,
            role: None,
            person: None,
        },
        person: None,
    };
    let created = store.create_orders(&proposer, orders).await?;
    for o in &created {
        say!(
            "draft order {} ({}, {} names): check GET /api/v1/orders/{}/blast-radius, then an approver approves it",
            o.id,
            o.action.as_str(),
            o.target_count,
            o.id
        );
        // say now what would hold the whole list back
        let dp = store.due_process(&o.id).await?;
        if !dp.needs_authorisation.is_empty() {
            say!(
                "  this order needs an independent authorisation before it is published ({} reason(s) shown); without one it stays out of the zone:",
                dp.needs_authorisation.len()
            );
            for r in dp.needs_authorisation.iter().take(10) {
                say!("    - {}", r.describe());
            }
            say!("  remove those names from the list to publish the rest without it");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn token_create(
    settings: &Settings,
    party: &str,
    role: &str,
    label: &str,
    person: Option<&str>,
    expires_at: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let role = Role::parse(role)?;
    let person = person.map(tapis_core::person::Person::parse).transpose()?;
    let expires_at = expires_at
        .map(|s| tapis_core::Timestamp::parse("--expires-at", s))
        .transpose()?;
    let store = open(settings).await?;
    let party_id = party_by_id_or_name(&store, party).await?;
    let actor = cli_actor("tapis token create");
    let (info, secret) = store
        .create_token_with(
            &actor,
            party_id,
            role,
            label,
            person.as_ref(),
            expires_at,
            None,
        )
        .await?;
    eprintln!(
        "created token {} ({}) for party {}",
        info.id,
        info.role.as_str(),
        info.party_id
    );
    say!("{secret}");
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The party named by `party`: its id, or its exact name when that is
/// unique.
async fn party_by_id_or_name(store: &tapis_store::Store, party: &str) -> anyhow::Result<PartyId> {
    if let Ok(id) = PartyId::parse(party) {
        return Ok(id);
    }
    let matches: Vec<_> = store
        .list_parties(None)
        .await?
        .into_iter()
        .filter(|p| p.name == party)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.id),
        [] => bail!("no party has the id or name {party:?}"),
        _ => bail!("several parties are named {party:?}; give the id"),
    }
}

/// Who a command acts as in the audit log: the command and the OS user.
fn cli_actor(command: &str) -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor {
        kind: "cli",
        party_id: None,
        token_id: None,
        label: format!("{command} (OS user {user})"),
        role: None,
        person: None,
    }
}

pub(super) async fn token_revoke(settings: &Settings, id: &str) -> anyhow::Result<ExitCode> {
    let id = tapis_core::TokenId::parse(id).map_err(|e| {
        anyhow::anyhow!("{e} (give the token's id from `tapis token list`, not its secret)")
    })?;
    let store = open(settings).await?;
    let info = store
        .revoke_token(&cli_actor("tapis token revoke"), id)
        .await;
    store.close().await;
    let info = info?;
    say!(
        "revoked token {} ({}, {:?}) of party {}",
        info.id,
        info.role.as_str(),
        info.label,
        info.party_id
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn token_list(settings: &Settings, party: &str) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let party_id = party_by_id_or_name(&store, party).await;
    let tokens = match party_id {
        Ok(p) => store.list_tokens(p).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    store.close().await;
    let now = tapis_core::Clock::now(&tapis_core::SystemClock);
    for r in tokens? {
        let t = &r.info;
        let state = match (r.revoked_at, t.expires_at) {
            (Some(at), _) => format!("revoked {at}"),
            (None, Some(at)) if at <= now => format!("expired {at}"),
            (None, Some(at)) => format!("live until {at}"),
            (None, None) => "live".to_owned(),
        };
        let used = match r.first_used_at {
            Some(at) => format!("first used {at}"),
            None => "never used".to_owned(),
        };
        say!(
            "{}\t{}\t{}\tcreated {}\t{}\t{:?}\t{}",
            t.id,
            t.role.as_str(),
            state,
            t.created_at,
            used,
            t.label,
            t.person.as_ref().map_or("(machine)", |p| p.as_str())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn audit_verify(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let report = store.verify_audit().await?;
    store.close().await;
    match report.first_break {
        None => {
            say!(
                "audit chain intact: {} events, head {}{}",
                report.events,
                report.head,
                erased_note(report.erased)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(b) => {
            say!(
                "audit chain BROKEN at event {}: {} ({} events before it verify)",
                b.seq,
                b.reason,
                report.events
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// What a verification adds when retention erased payloads on the record.
pub(super) fn erased_note(erased: u64) -> String {
    if erased == 0 {
        String::new()
    } else {
        format!(
            "; {erased} payloads erased by retention, each named by a retention.erased tombstone (on the record, not tampering)"
        )
    }
}
