//! What the channel's workers can fail with: the store, or their own
//! set-up (HTTP client, SMTP settings, webhook secrets).

/// One error for the crate; messages say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] tapis_store::Error),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("[smtp] url is not valid: {0}")]
    SmtpUrl(String),
    #[error("[smtp] from is not an address: {0}")]
    SmtpFrom(String),
    #[error("webhook secret is not base64")]
    SecretNotBase64,
    #[error("webhook secret is empty")]
    SecretEmpty,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
