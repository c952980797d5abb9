//! `tapis account create` and `tapis account link`: people's accounts for
//! the web interface, made on the host.
//!
//! This is how the first admin account exists (beside the bootstrap admin
//! token, which stays a machine-and-operator credential and does not sign
//! in to pages). The command never takes a password: it prints a one-time
//! link (valid 24 hours) with which the person sets their own, so the
//! operator who runs it never holds it. Parties other than the authority
//! onboard their people by invitation (`/invitations/{code}`) instead.

use std::process::ExitCode;

use clap::Subcommand;
use tapis_core::PartyId;
use tapis_core::audit::Actor;
use tapis_core::person::Person;
use tapis_core::role::Role;

use super::{StoreArgs, open};
use crate::config::Settings;

const CREATE_HELP: &str = "\
Exit status: 0 created, 2 on error (a login already taken, a role that does not fit the party).

Prints a one-time link (valid 24 hours) with which the person sets their
own password; hand it to them, not a password. Repeat --role for an
account that holds several (the person switches between them).

Example:
  tapis account create --party Ministry --role admin --person \"Siti Rahma\" --login siti";

const LINK_HELP: &str = "\
Exit status: 0 issued, 2 on error.

Prints a new one-time link for an account whose holder forgot the
password (earlier unused links stop working). Using it ends the account's
sessions and unlocks it.

Example:
  tapis account link --login siti";

#[derive(Subcommand, Debug)]
pub(super) enum AccountCommand {
    /// Create a person's account and print a one-time link to set its password.
    #[command(after_help = CREATE_HELP)]
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// The party the account belongs to: its id, or its exact name.
        #[arg(long)]
        party: String,
        /// A role that fits the party's kind (repeat for several).
        #[arg(long, required = true)]
        role: Vec<String>,
        /// The person's full name; four eyes compares it.
        #[arg(long)]
        person: String,
        /// The sign-in name (3 to 64 lowercase letters, digits, . _ @ -).
        #[arg(long)]
        login: String,
    },
    /// Print a new one-time link to set an account's password.
    #[command(after_help = LINK_HELP)]
    Link {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        login: String,
    },
}

impl AccountCommand {
    pub(super) fn store(&self) -> &StoreArgs {
        match self {
            AccountCommand::Create { store, .. } | AccountCommand::Link { store, .. } => store,
        }
    }
}

fn link_url(settings: &Settings, code: &str) -> String {
    let base = if settings.channel.public_url.is_empty() {
        format!("http://{}", settings.listen)
    } else {
        settings.channel.public_url.trim_end_matches('/').to_owned()
    };
    format!("{base}/reset/{code}")
}

pub(super) async fn run(settings: &Settings, command: AccountCommand) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = Actor {
        kind: "cli",
        party_id: None,
        token_id: None,
        label: format!("tapis account (OS user {user})"),
        role: None,
        person: None,
    };
    let result: anyhow::Result<()> = async {
        match command {
            AccountCommand::Create {
                party,
                role,
                person,
                login,
                ..
            } => {
                let party_id = match PartyId::parse(&party) {
                    Ok(id) => id,
                    Err(_) => store
                        .list_parties(None)
                        .await?
                        .into_iter()
                        .find(|p| p.name == party)
                        .map(|p| p.id)
                        .ok_or_else(|| anyhow::anyhow!("no party with the id or name {party:?}"))?,
                };
                let roles = role
                    .iter()
                    .map(|r| Role::parse(r))
                    .collect::<Result<Vec<_>, _>>()?;
                let person = Person::parse(&person)?;
                let account = store
                    .create_account(&actor, party_id, &login, &person, &roles, None)
                    .await?;
                let (_, code) = store.issue_account_link(&actor, &account.login).await?;
                eprintln!(
                    "created account {} for {} at {}; send them this one-time link to set a password (valid 24 hours):",
                    account.login, account.person, account.party_name
                );
                println!("{}", link_url(settings, &code));
            }
            AccountCommand::Link { login, .. } => {
                let (account, code) = store.issue_account_link(&actor, &login).await?;
                eprintln!("one-time link for {} (valid 24 hours):", account.login);
                println!("{}", link_url(settings, &code));
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
