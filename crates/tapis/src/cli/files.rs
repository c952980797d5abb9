//! tapis's files on disk and who may read them. The data directory is
//! created 0700; the SQLite database, the signing key, the first admin
//! token and the secrets key are owner-only (0600).
//!
//! At start the two kinds of file are treated differently, on purpose:
//!
//! - A **key** (signing key, admin token, secrets key file) that the group
//!   or others can read or write is refused, with the `chmod` to run. Once
//!   others could read a key it may have been copied; only the operator
//!   can judge whether to replace it, so tapis does not quietly fix the
//!   mode and carry on as if nothing happened.
//! - The **SQLite database** (`tapis.db` and its `-wal` and `-shm`) is
//!   tightened to 0600 and a warning logged. tapis creates these files
//!   itself and versions before this one created `tapis.db` 0644 (the
//!   umask's default), so refusing would stop every upgraded installation
//!   for a mode tapis chose; SQLite gives `-wal` and `-shm` the database
//!   file's mode each time it creates them, so fixing the main file fixes
//!   them for good.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Group and other permission bits.
#[cfg(unix)]
const OTHERS: u32 = 0o077;

#[cfg(unix)]
fn mode_of(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot read the permissions of {}", path.display()))?
        .permissions()
        .mode()
        & 0o777)
}

/// Create `dir` (and any missing parent) owner-only; an existing one that
/// others may enter is kept, with a warning (its files are each 0600).
pub(crate) fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        return Ok(());
    }
    #[cfg(unix)]
    {
        let mode = mode_of(dir)?;
        if mode & OTHERS != 0 {
            tracing::warn!(
                path = %dir.display(),
                mode = format!("{mode:04o}"),
                "the data directory is open to others (its files are owner-only): run `chmod 700 {}`",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Refuse a key file that the group or others can read or write.
pub(crate) fn check_key_file(path: &Path, what: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mode = mode_of(path)?;
        if mode & OTHERS != 0 {
            anyhow::bail!(
                "{what} {} can be read or written by others (mode {mode:04o}): run `chmod 600 {}` (and, since others could read it, consider it exposed and replace it)",
                path.display(),
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// The file of a `sqlite:` URL, if it is one.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Before a SQLite database is opened: create it owner-only when it does
/// not exist (SQLite would create it with the umask's 0644, and its
/// `-wal` and `-shm` after it), and tighten one that others can read.
pub(crate) fn prepare_database(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_private_dir(dir)?;
    }
    if !path.exists() {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        // an empty file is an empty SQLite database; another process
        // creating it first is fine
        match opts.open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()));
            }
        }
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.clone().into_os_string();
        name.push(suffix);
        let file = PathBuf::from(name);
        if !file.exists() {
            continue;
        }
        let mode = mode_of(&file)?;
        if mode & OTHERS != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| {
                    format!(
                        "{} is readable by others (mode {mode:04o}) and cannot be restricted: run `chmod 600 {}`",
                        file.display(),
                        file.display()
                    )
                })?;
            tracing::warn!(
                path = %file.display(),
                was = format!("{mode:04o}"),
                "tightened the database file to 0600: others could read it (if secrets at rest were not sealed, consider rotating webhook and TSIG secrets)"
            );
        }
    }
    Ok(())
}

/// tapis's Ed25519 signing key: 32 random bytes in hex, created on first
/// start (owner-only). Losing it is not fatal (a new key is published and
/// old signatures still verify with the old public key), but keep it.
pub(crate) fn load_signing_key(path: &Path) -> anyhow::Result<tapis_core::sign::Signer> {
    if path.exists() {
        check_key_file(path, "the signing key")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        let seed = bytes.ok_or_else(|| {
            anyhow::anyhow!("{} is not a signing key (64 hex digits)", path.display())
        })?;
        return Ok(tapis_core::sign::Signer::from_seed(seed));
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    write_secret(path, &hex::encode(seed))?;
    let signer = tapis_core::sign::Signer::from_seed(seed);
    tracing::info!(kid = signer.kid(), path = %path.display(), "created a signing key");
    Ok(signer)
}

/// Write a secret readable by the owner only (an existing file is made
/// owner-only too: the open mode applies only to a file it creates).
pub(crate) fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    writeln!(f, "{secret}")?;
    Ok(())
}

/// The first admin token's file does its job once: as soon as that token
/// has authenticated a request (or is revoked or expired), the file is
/// removed, so a copy of the data directory or a later reader of the disk
/// does not get a working admin credential. Checked now (a restart after
/// its use removes it before serving), then every `every` (one indexed
/// query) until it is used; nothing to watch when there is no file.
pub(crate) async fn remove_admin_token_once_used(
    store: tapis_store::Store,
    file: std::path::PathBuf,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let secret = std::fs::read_to_string(&file).ok()?.trim().to_owned();
    if remove_if_used(&store, &file, &secret).await {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if remove_if_used(&store, &file, &secret).await {
                return;
            }
        }
    }))
}

/// Removes `file` if the token it holds was used; true when done watching.
async fn remove_if_used(store: &tapis_store::Store, file: &Path, secret: &str) -> bool {
    match store.token_used(secret).await {
        Ok(true) => {
            match std::fs::remove_file(file) {
                Ok(()) => tracing::info!(
                    path = %file.display(),
                    "removed the first admin token's file: the token has been used (it still works; keep it yourself, or better, give each administrator a token of their own with a person and revoke this one)"
                ),
                Err(e) => tracing::warn!(
                    path = %file.display(),
                    error = %e,
                    "the first admin token has been used but its file cannot be removed: remove it yourself"
                ),
            }
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::debug!(error = %e, "cannot check the first admin token's use");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            super::sqlite_path("sqlite:///d/tapis.db?mode=rwc"),
            Some(PathBuf::from("/d/tapis.db"))
        );
        assert_eq!(
            super::sqlite_path("sqlite:x.db"),
            Some(PathBuf::from("x.db"))
        );
        assert_eq!(super::sqlite_path("sqlite::memory:"), None);
        assert_eq!(super::sqlite_path("postgres://h/db"), None);
    }
}
