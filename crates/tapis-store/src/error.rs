/// What the store can fail with. Database errors are kept whole for the
/// logs; the HTTP layer shows clients only the kind of failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with stored state (a duplicate name, an
    /// idempotency key reused with another request).
    #[error("{0}")]
    Conflict(String),
    /// The domain refused the change (bad input or an illegal transition).
    #[error(transparent)]
    Domain(#[from] tapis_core::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} failed: {message}")]
    Migration { version: i64, message: String },
    /// Stored data does not decode: someone edited the database by hand or
    /// a bug wrote garbage. Never shown to clients in detail.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot open the database: {0}")]
    Open(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Error::Corrupt(what.to_string())
    }
}

impl Error {
    /// Whether the database could not be reached (as opposed to refusing
    /// the request): the caller may retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}
