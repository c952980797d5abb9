//! `tapis authoriser enrol` and `tapis authoriser list`: authorisers'
//! signing keys are enrolled here, on the host, never through the API.
//!
//! Whoever holds the authority's admin token must not be able to give an
//! authoriser a key of their own choosing, so the key is a host-side
//! setting: the operator enrols the key the authoriser handed over, each
//! enrolment is an audit event in the same transaction, and the list of
//! keys with their fingerprints is public (`GET /api/v1/authorisers`) for
//! the authoriser to compare with what it published itself.

use std::process::ExitCode;

use clap::Subcommand;
use tapis_core::audit::Actor;

use super::{StoreArgs, open};
use crate::config::Settings;

const ENROL_HELP: &str = "\
Exit status: 0 enrolled (or already the current key), 2 on error (a weak or malformed key, a key another authoriser holds).

The authoriser gives you its Ed25519 public key (base64) and publishes its
fingerprint (SHA-256 of the raw 32-byte key, hex) where people can see it;
compare the fingerprint printed here with that one before you trust it.
A new key retires the previous one; signatures already made still count.

Example:
  tapis authoriser enrol --name \"Administrative Court\" --public-key MCowBQYDK2VwAyEA…";

const LIST_HELP: &str = "\
Exit status: 0 listed, 2 on error.

Prints one line per key: name, fingerprint (SHA-256 of the raw key, hex),
enrolled at, and `retired at …` for a replaced key. The same list is public
at GET /api/v1/authorisers.

Example:
  tapis authoriser list --database-url postgres://tapis@db/tapis";

#[derive(Subcommand, Debug)]
pub(super) enum AuthoriserCommand {
    /// Enrol an authoriser's signing key (creating the authoriser party if
    /// there is none by that name).
    #[command(after_help = ENROL_HELP)]
    Enrol {
        #[command(flatten)]
        store: StoreArgs,
        /// The authoriser's name, e.g. "Administrative Court".
        #[arg(long)]
        name: String,
        /// Its Ed25519 public key, base64 (32 bytes).
        #[arg(long, value_name = "B64")]
        public_key: String,
    },
    /// List every authoriser's enrolled keys with their fingerprints.
    #[command(after_help = LIST_HELP)]
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

impl AuthoriserCommand {
    pub(super) fn store(&self) -> &StoreArgs {
        match self {
            AuthoriserCommand::Enrol { store, .. } | AuthoriserCommand::List { store } => store,
        }
    }
}

pub(super) async fn run(
    settings: &Settings,
    command: AuthoriserCommand,
) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let result = match command {
        AuthoriserCommand::Enrol {
            name, public_key, ..
        } => {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let actor = Actor {
                kind: "cli",
                party_id: None,
                token_id: None,
                label: format!("tapis authoriser enrol (OS user {user})"),
                role: None,
                person: None,
            };
            store
                .enrol_authoriser(&actor, &name, &public_key)
                .await
                .map(|k| {
                    println!(
                        "{}\t{}\tenrolled at {}",
                        k.name, k.fingerprint, k.enrolled_at
                    );
                    eprintln!(
                        "authoriser {:?} ({}) signs with the key whose fingerprint is {}: check it against the one the authoriser publishes",
                        k.name, k.party_id, k.fingerprint
                    );
                })
        }
        AuthoriserCommand::List { .. } => store.authoriser_keys().await.map(|keys| {
            for k in keys {
                let retired = k
                    .retired_at
                    .map(|t| format!("\tretired at {t}"))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\tenrolled at {}{retired}",
                    k.name, k.fingerprint, k.enrolled_at
                );
            }
        }),
    };
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
