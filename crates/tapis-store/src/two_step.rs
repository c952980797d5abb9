//! Two-step sign-in: a person adds an authenticator app to their own
//! account (a TOTP secret, `tapis_core::totp`), and sign-in then asks for
//! its code after the password.
//!
//! Setting up is two writes: `begin_two_step` keeps a new secret aside
//! (`totp_pending`), and only a right code from the app moves it into
//! place (`confirm_two_step`), so a person cannot lock themselves out by
//! half-finishing. Turning it off takes a current code too. Secrets are
//! sealed at rest like every other secret (`secrets.rs`); each accepted
//! code's step is spent in the same transaction as the sign-in, so a code
//! works once. Only the person themselves, signed in, can change it; an
//! admin's one-time password link clears it (the way back after a lost
//! phone), and says so on the audit log.

use serde_json::json;
use tapis_core::EventType;
use tapis_core::totp::{SECRET_BYTES, TotpSecret};

use crate::accounts::AccountInfo;
use crate::audit::Event;
use crate::secrets::Place;
use crate::{Error, Result, Store};

type Tx = sqlx::Transaction<'static, sqlx::Any>;

fn place<'a>(account: &'a str, column: &'static str) -> Place<'a> {
    Place {
        table: "accounts",
        column,
        row: account,
    }
}

fn wrong_code() -> Error {
    tapis_core::Error::invalid(
        "code",
        "that code is not right: enter the six digits your authenticator app shows now",
    )
    .into()
}

/// Record `step` as the last accepted one, unless it (or a later one) was
/// already: false means the code was just used.
pub(crate) async fn spend_step(tx: &mut Tx, account: &AccountInfo, step: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 \
         AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .bind(step)
    .bind(account.id.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Put the change on the record, in its person's name, and commit it.
async fn commit_with_event(
    mut tx: Tx,
    account: &AccountInfo,
    action: EventType,
    now: tapis_core::Timestamp,
) -> Result<()> {
    let after = json!({"account_id": account.id.to_string()});
    Event::party(action, account.party_id, after)
        .append(&mut tx, now, &crate::accounts::account_actor(account))
        .await?;
    tx.commit().await?;
    Ok(())
}

impl Store {
    /// The step `code` matches for this account's stored secret, if it is
    /// right now and not spent.
    pub(crate) fn check_code(
        &self,
        account: &AccountInfo,
        stored: &str,
        code: &str,
        last_step: Option<i64>,
    ) -> Result<Option<i64>> {
        let id = account.id.to_string();
        let text = self.ctx.secrets.open(place(&id, "totp_secret"), stored)?;
        let secret = TotpSecret::parse(&text).map_err(Error::corrupt)?;
        Ok(secret.verify(code, self.now(), last_step))
    }

    /// Start setting up two-step sign-in: a new secret, kept aside until
    /// [`Store::confirm_two_step`]. Returns it, for the person's app.
    pub async fn begin_two_step(&self, account: &AccountInfo) -> Result<TotpSecret> {
        let secret = TotpSecret::from_bytes(rand::random::<[u8; SECRET_BYTES]>());
        let id = account.id.to_string();
        let sealed = self
            .ctx
            .secrets
            .seal(place(&id, "totp_pending"), &secret.to_base32())?;
        let mut tx = self.write().await?;
        let set = sqlx::query("UPDATE accounts SET totp_pending = $1 WHERE id = $2")
            .bind(sealed)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        if set.rows_affected() != 1 {
            return Err(Error::NotFound("account"));
        }
        // bookkeeping, not yet a change to how the account signs in: the
        // audit event comes with the confirmation
        tx.commit().await?;
        Ok(secret)
    }

    /// The secret being set up, to show again (a reload of the page).
    pub async fn pending_two_step(&self, account: &AccountInfo) -> Result<Option<TotpSecret>> {
        let id = account.id.to_string();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT totp_pending FROM accounts WHERE id = $1")
                .bind(&id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        stored
            .map(|s| {
                let text = self.ctx.secrets.open(place(&id, "totp_pending"), &s)?;
                TotpSecret::parse(&text).map_err(Error::corrupt)
            })
            .transpose()
    }

    /// Finish setting up: `code` must come from the secret kept aside.
    pub async fn confirm_two_step(&self, account: &AccountInfo, code: &str) -> Result<()> {
        let Some(secret) = self.pending_two_step(account).await? else {
            return Err(tapis_core::Error::invalid(
                "code",
                "there is no set-up in progress: start it again from your account page",
            )
            .into());
        };
        let now = self.now();
        let step = secret.verify(code, now, None).ok_or_else(wrong_code)?;
        let id = account.id.to_string();
        let sealed = self
            .ctx
            .secrets
            .seal(place(&id, "totp_secret"), &secret.to_base32())?;
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE accounts SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3",
        )
        .bind(sealed)
        .bind(step)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        commit_with_event(tx, account, EventType::AccountTotpEnabled, now).await
    }

    /// Turn two-step sign-in off, with a current code.
    pub async fn disable_two_step(&self, account: &AccountInfo, code: &str) -> Result<()> {
        let id = account.id.to_string();
        let row: Option<(Option<String>, Option<i64>)> =
            sqlx::query_as("SELECT totp_secret, totp_last_step FROM accounts WHERE id = $1")
                .bind(&id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((Some(stored), last)) = row else {
            return Err(tapis_core::Error::invalid(
                "code",
                "two-step sign-in is not on for this account",
            )
            .into());
        };
        let step = self
            .check_code(account, &stored, code, last)?
            .ok_or_else(wrong_code)?;
        let now = self.now();
        let mut tx = self.write().await?;
        if !spend_step(&mut tx, account, step).await? {
            return Err(wrong_code());
        }
        sqlx::query(
            "UPDATE accounts SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = $1",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        commit_with_event(tx, account, EventType::AccountTotpDisabled, now).await
    }
}
