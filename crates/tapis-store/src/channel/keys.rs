//! tapis's own signing keys, published so that anyone can verify what it
//! signed (old keys stay listed), and the receipts issued for a notice.

use super::*;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicKey {
    pub kid: String,
    pub alg: &'static str,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
}

impl Store {
    /// Publish this store's signing key (idempotent).
    pub(crate) async fn publish_key(&self) -> Result<()> {
        let signer = &self.ctx.signer;
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT kid FROM signing_keys WHERE kid = $1")
            .bind(signer.kid())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            let now = self.now();
            sqlx::query(
                "INSERT INTO signing_keys (kid, public_key, created_at) VALUES ($1, $2, $3)",
            )
            .bind(signer.kid())
            .bind(signer.public_key_b64())
            .bind(now.unix_millis())
            .execute(&mut *tx)
            .await?;
            let after = json!({"kid": signer.kid(), "alg": tapis_core::sign::ALG, "public_key": signer.public_key_b64()});
            Event::about(EventType::KeyPublished, "key", signer.kid(), after)
                .append(&mut tx, now, &Actor::system("signing"))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every public key tapis has signed with; old keys stay listed.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>> {
        let rows = sqlx::query(
            "SELECT kid, public_key, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PublicKey {
                    kid: r.try_get("kid")?,
                    alg: tapis_core::sign::ALG,
                    public_key: r.try_get("public_key")?,
                    created_at: Timestamp::from_unix_millis(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// Receipts issued for a notice, oldest first.
    pub async fn receipts(&self, notice: NoticeId) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT receipt FROM receipts WHERE notice_id = $1 ORDER BY created_at, id",
        )
        .bind(notice.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.try_get::<String, _>("receipt")?).map_err(Error::corrupt)
            })
            .collect()
    }
}
