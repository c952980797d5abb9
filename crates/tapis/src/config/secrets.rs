//! The key that seals secrets at rest, and the one it replaced while the
//! stored secrets are sealed again under the new one (a key rotation:
//! `TAPIS_SECRETS_PREVIOUS_KEY`, then `serve` reseals every sealed column
//! at start, after which the previous key can be destroyed).

use anyhow::{Context as _, bail};
use tapis_store::secrets::SecretKey;

use super::Settings;

impl Settings {
    /// The key that seals secrets at rest: from `TAPIS_SECRETS_KEY`, or
    /// read from `secrets_key_file` (refused when others can read it), or
    /// none; with `TAPIS_SECRETS_PREVIOUS_KEY` retired beside it (it opens
    /// what it sealed, never seals).
    pub fn secret_key(&self) -> anyhow::Result<SecretKey> {
        let key = match (self.secrets_key.get(), &self.secrets_key_file) {
            (Some(_), Some(_)) => {
                bail!("both TAPIS_SECRETS_KEY and secrets_key_file are set: keep one")
            }
            (Some(text), None) => SecretKey::parse(text)
                .map_err(|e| anyhow::anyhow!("TAPIS_SECRETS_KEY is not valid: {e}"))?,
            (None, Some(path)) => {
                crate::cli::check_key_file(path, "the secrets key file")?;
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the secrets key file {}", path.display())
                })?;
                SecretKey::parse(&text).map_err(|e| {
                    anyhow::anyhow!("the secrets key file {} is not valid: {e}", path.display())
                })?
            }
            (None, None) => SecretKey::none(),
        };
        let Some(previous) = self.secrets_previous_key.get() else {
            return Ok(key);
        };
        if !key.is_set() {
            bail!(
                "TAPIS_SECRETS_PREVIOUS_KEY is set but no secrets key is: set the new key (secrets_key_file or TAPIS_SECRETS_KEY) beside it"
            );
        }
        let previous = SecretKey::parse(previous)
            .map_err(|e| anyhow::anyhow!("TAPIS_SECRETS_PREVIOUS_KEY is not valid: {e}"))?;
        if previous.kid() == key.kid() {
            bail!("TAPIS_SECRETS_PREVIOUS_KEY is the secrets key itself: give the key it replaced");
        }
        Ok(key.with_retired(previous))
    }
}
