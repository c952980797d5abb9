//! `tapis log verify`: the transparency log checked offline, on the
//! database, from the audit events alone, and against checkpoints saved
//! earlier (by a witness, a platform, anyone who fetched
//! `GET /api/v1/log/checkpoint`).
//!
//! Every leaf is recomputed from its event (the chain hash recomputed from
//! the event's content, not read from the table) and its salt; the tree
//! from the leaves. A saved checkpoint must carry the log's signature and
//! be consistent with that tree: a deleted tail (the tree is now smaller
//! than a size the log signed), an edited event or a chain rehashed end to
//! end (the tree of that size has another root) all fail here even when
//! `tapis audit verify` says the chain is intact.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use tapis_core::tlog::note::{Checkpoint, Note, Vkey, log_vkey};
use tapis_core::tlog::{self, hash_to_b64};

use super::{StoreArgs, open};
use crate::config::Settings;

const VERIFY_HELP: &str = "\
Exit status: 0 the log is what its events say and consistent with every checkpoint given; 1 it is not (each problem is printed); 2 on error.

The log's key is --log-key (the text of GET /api/v1/log/key), or else the
signing key in the data directory with transparency.origin.

Example:
  tapis log verify --checkpoint witness-state/checkpoints/*.checkpoint";

#[derive(Subcommand, Debug)]
pub(super) enum LogCommand {
    /// Recompute the transparency log from the audit events and check it
    /// against checkpoints saved earlier.
    #[command(after_help = VERIFY_HELP)]
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Checkpoints (signed notes) saved earlier.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        checkpoint: Vec<PathBuf>,
        /// The log's verifier key (`origin+keyid+base64`).
        #[arg(long, value_name = "VKEY")]
        log_key: Option<String>,
    },
}

impl LogCommand {
    pub(super) fn store(&self) -> &StoreArgs {
        match self {
            LogCommand::Verify { store, .. } => store,
        }
    }
}

fn local_log_key(settings: &Settings) -> anyhow::Result<Vkey> {
    let path = settings
        .signing_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("signing-key"));
    if !path.exists() {
        anyhow::bail!(
            "no signing key at {}: give the log's key with --log-key (GET /api/v1/log/key)",
            path.display()
        );
    }
    let signer = super::load_signing_key(&path)?;
    Ok(log_vkey(&settings.transparency.origin, &signer))
}

/// Check one saved checkpoint against the recomputed tree.
fn check(file: &Path, key: &Vkey, tree: &tlog::MemoryTree) -> Result<u64, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let note = Note::parse(&text).map_err(|e| format!("not a signed note: {e}"))?;
    note.verify(key)
        .map_err(|e| format!("not signed by the log's key {key}: {e}"))?;
    let cp = Checkpoint::parse_body(&note.text).map_err(|e| e.to_string())?;
    let have = tree.size();
    if cp.size > have {
        return Err(format!(
            "the log signed a tree of {} leaves, but its events make only {have}: the tail of the log was deleted",
            cp.size
        ));
    }
    let ours = tlog::root(tree, cp.size).map_err(|e| e.to_string())?;
    if cp.size > 0 {
        let proof = tlog::prove_consistency(tree, cp.size, have).map_err(|e| e.to_string())?;
        tlog::verify_consistency(cp.size, have, &proof, &cp.root, &tree.root()).map_err(|e| {
            format!(
                "the log signed root {} for size {}, but its events give {} ({e}): the log was rewritten",
                hash_to_b64(&cp.root),
                cp.size,
                hash_to_b64(&ours)
            )
        })?;
    }
    Ok(cp.size)
}

pub(super) async fn run(settings: &Settings, command: LogCommand) -> anyhow::Result<ExitCode> {
    let LogCommand::Verify {
        checkpoint,
        log_key,
        ..
    } = command;
    // the log's key is needed only to check checkpoints
    let key = match (&log_key, checkpoint.is_empty()) {
        (Some(k), _) => Some(Vkey::parse(k).map_err(|e| anyhow::anyhow!("--log-key: {e}"))?),
        (None, false) => Some(local_log_key(settings)?),
        (None, true) => None,
    };
    let store = open(settings).await?;
    let recomputed = store.recompute_log().await;
    store.close().await;
    let recomputed = recomputed?;
    let mut failed = !recomputed.problems.is_empty();
    for p in &recomputed.problems {
        super::print_line(&format!("log BROKEN: {p}"));
    }
    for (file, key) in checkpoint.iter().zip(key.iter().cycle()) {
        match check(file, key, &recomputed.tree) {
            Ok(size) => super::print_line(&format!(
                "checkpoint {} (size {size}) is consistent with the log",
                file.display()
            )),
            Err(e) => {
                failed = true;
                super::print_line(&format!("checkpoint {} FAILS: {e}", file.display()));
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    super::print_line(&format!(
        "transparency log intact: {} leaves, root {}{}",
        recomputed.tree.size(),
        hash_to_b64(&recomputed.tree.root()),
        super::offline::erased_note(recomputed.erased)
    ));
    Ok(ExitCode::SUCCESS)
}
