//! `tapis witness`: follow a tapis transparency log, check that it only
//! grows, co-sign what it saw, and keep every checkpoint.
//!
//! Each round: fetch the latest checkpoint, verify the log's signature (the
//! log's key is pinned in the state directory on first use, or given with
//! `--log-key`), fetch a consistency proof from the last checkpoint this
//! witness saw and verify it, keep the new checkpoint, co-sign it
//! (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`) and POST the
//! cosignature to `/api/v1/log/cosignatures`. A smaller tree, another root
//! for a size already seen, or a proof that does not verify is a fork or a
//! rewritten past: the witness writes a report naming both checkpoints and
//! exits 1. It needs no database and no tapis settings.
//!
//! State directory: `log.vkey` (the pinned log key), `witness.vkey` (this
//! witness's verifier key, for the log's `transparency.witnesses`),
//! `latest.checkpoint`, `checkpoints/<size>.checkpoint`, `fork-*.txt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use tapis_core::tlog::note::{Checkpoint, CosignerKey, Note, Vkey};
use tapis_core::tlog::{self, hash_from_b64};

const WITNESS_HELP: &str = "\
Exit status: 0 every checkpoint seen was consistent (with --once: this one); 1 a fork or a rewritten log was found (see fork-*.txt in --state); 2 on error.

The key file holds 64 hex digits (an Ed25519 seed), made on first use
(mode 0600). Give the printed witness key to the log's operator
(transparency.witnesses) so its cosignatures are published.

Example:
  tapis witness --url https://tapis.example --state /var/lib/tapis-witness --key /var/lib/tapis-witness/key --once";

/// Follow a tapis transparency log as a witness.
#[derive(clap::Args, Debug)]
#[command(after_help = WITNESS_HELP)]
pub struct WitnessArgs {
    /// The tapis server, e.g. https://tapis.example.
    #[arg(long)]
    url: String,
    /// Where the witness keeps the pinned log key and every checkpoint.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// The witness's Ed25519 key (64 hex digits), made if missing.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The witness's name in its cosignatures (default: derived from its key).
    #[arg(long)]
    name: Option<String>,
    /// The log's verifier key; pinned on first use if not given.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    /// Check once and exit.
    #[arg(long)]
    once: bool,
    /// Seconds between rounds.
    #[arg(long, default_value_t = 60)]
    interval: u64,
}

fn load_key(path: &Path, name: Option<&str>) -> anyhow::Result<CosignerKey> {
    let seed = if path.exists() {
        crate::cli::check_key_file(path, "the witness key")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("{} is not a witness key (64 hex digits)", path.display())
            })?
    } else {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        crate::cli::write_secret(path, &hex::encode(seed))?;
        seed
    };
    let default_name;
    let name = match name {
        Some(n) => n,
        None => {
            let public = CosignerKey::from_seed("w", seed)?.vkey().public;
            default_name = format!("tapis-witness/{}", &hex::encode(public)[..16]);
            &default_name
        }
    };
    Ok(CosignerKey::from_seed(name, seed)?)
}

struct Witness {
    base: String,
    state: PathBuf,
    http: reqwest::Client,
    key: CosignerKey,
    log: Vkey,
}

enum Round {
    Ok(String),
    Fork(String),
}

impl Witness {
    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{url} answered {status}: {text}");
        }
        Ok(text)
    }

    fn read(&self, name: &str) -> anyhow::Result<Option<String>> {
        let p = self.state.join(name);
        if !p.exists() {
            return Ok(None);
        }
        Ok(Some(
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?,
        ))
    }

    fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let p = self.state.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))
    }

    fn fork(&self, old: &str, new: &str, why: &str) -> anyhow::Result<Round> {
        let name = format!(
            "fork-{}.txt",
            time::OffsetDateTime::now_utc().unix_timestamp()
        );
        let report = format!(
            "tapis witness: the log {} is not consistent with what this witness saw\n\
             reason: {why}\n\n--- checkpoint seen before ---\n{old}\n--- checkpoint served now ---\n{new}",
            self.log.name
        );
        self.write(&name, &report)?;
        Ok(Round::Fork(format!(
            "{why}; report written to {}",
            self.state.join(name).display()
        )))
    }

    async fn round(&self) -> anyhow::Result<Round> {
        let served = self.get("/api/v1/log/checkpoint").await?;
        let note = Note::parse(&served).context("the log's checkpoint is not a signed note")?;
        note.verify(&self.log)
            .context("the checkpoint is not signed by the pinned log key")?;
        let cp = Checkpoint::parse_body(&note.text)?;
        if cp.origin != self.log.name {
            bail!(
                "the checkpoint's origin {} is not the log's ({})",
                cp.origin,
                self.log.name
            );
        }
        // what the witness keeps: the text and the log's own signature
        let log_id = self.log.key_id();
        let sigs = note
            .sigs
            .iter()
            .filter(|l| l.name == self.log.name && l.key_id == log_id);
        let mine = Note {
            text: note.text.clone(),
            sigs: sigs.cloned().collect(),
        }
        .format();
        if let Some(old_text) = self.read("latest.checkpoint")? {
            let old = Checkpoint::parse_body(&Note::parse(&old_text)?.text)?;
            if cp.size < old.size {
                return self.fork(
                    &old_text,
                    &mine,
                    &format!(
                        "the log shrank from {} to {} leaves: its tail was deleted",
                        old.size, cp.size
                    ),
                );
            }
            if cp.size == old.size && cp.root != old.root {
                return self.fork(
                    &old_text,
                    &mine,
                    &format!(
                        "two roots for tree size {}: the log forked or was rewritten",
                        cp.size
                    ),
                );
            }
            if cp.size > old.size && old.size > 0 {
                let body = self
                    .get(&format!(
                        "/api/v1/log/proof/consistency?from={}&to={}",
                        old.size, cp.size
                    ))
                    .await?;
                let v: serde_json::Value =
                    serde_json::from_str(&body).context("the consistency proof is not JSON")?;
                let proof = v["proof"]
                    .as_array()
                    .ok_or_else(|| anyhow::anyhow!("the consistency proof has no `proof` list"))?
                    .iter()
                    .map(|h| hash_from_b64("proof", h.as_str().unwrap_or_default()))
                    .collect::<tapis_core::Result<Vec<_>>>()?;
                if let Err(e) =
                    tlog::verify_consistency(old.size, cp.size, &proof, &old.root, &cp.root)
                {
                    return self.fork(&old_text, &mine, &format!(
                        "the tree of {} leaves does not extend the one of {} this witness saw ({e}): the past was rewritten",
                        cp.size, old.size));
                }
            }
        }
        std::fs::create_dir_all(self.state.join("checkpoints"))?;
        let kept = format!("checkpoints/{}.checkpoint", cp.size);
        if let Some(prev) = self.read(&kept)?
            && Note::parse(&prev)?.text != note.text
        {
            return self.fork(
                &prev,
                &mine,
                &format!("two roots for tree size {}", cp.size),
            );
        }
        self.write(&kept, &mine)?;
        self.write("latest.checkpoint", &mine)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let cosigned = Note {
            text: note.text.clone(),
            sigs: vec![self.key.cosign(&note.text, now)],
        };
        let url = format!("{}/api/v1/log/cosignatures", self.base);
        let resp = self
            .http
            .post(&url)
            .body(cosigned.format())
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Ok(Round::Ok(format!(
                "checkpoint of size {} is consistent; the log did not take the cosignature ({status}: {text}): its operator must add {} to transparency.witnesses",
                cp.size,
                self.key.vkey()
            )));
        }
        Ok(Round::Ok(format!(
            "checkpoint of size {} is consistent; cosigned",
            cp.size
        )))
    }
}

pub(crate) fn run(args: WitnessArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.state)
        .with_context(|| format!("cannot create {}", args.state.display()))?;
    let key = load_key(&args.key, args.name.as_deref())?;
    std::fs::write(args.state.join("witness.vkey"), format!("{}\n", key.vkey()))?;
    eprintln!("witness key: {}", key.vkey());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let base = args.url.trim_end_matches('/').to_owned();
        let pinned = args.state.join("log.vkey");
        let log = match (std::fs::read_to_string(&pinned).ok(), &args.log_key) {
            (Some(p), Some(given)) if p.trim() != given.trim() => bail!(
                "--log-key differs from the key pinned in {}: a log's key does not change; if it truly did, move that file away",
                pinned.display()
            ),
            (Some(p), _) => p,
            (None, Some(given)) => given.clone(),
            (None, None) => {
                let url = format!("{base}/api/v1/log/key");
                let text = http.get(&url).send().await?.error_for_status()?.text().await?;
                eprintln!("pinned the log's key on first use: {}", text.trim());
                text
            }
        };
        let log = Vkey::parse(&log).map_err(|e| anyhow::anyhow!("the log's key: {e}"))?;
        std::fs::write(&pinned, format!("{log}\n"))?;
        let w = Witness { base, state: args.state, http, key, log };
        loop {
            match w.round().await {
                Ok(Round::Ok(msg)) => eprintln!("{msg}"),
                Ok(Round::Fork(msg)) => {
                    eprintln!("FORK: {msg}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) if args.once => return Err(e),
                // an unreachable log is not a fork: try again next round
                Err(e) => eprintln!("warning: {e:#}"),
            }
            if args.once {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
        }
    })
}
