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
    /// The database could not do the work now (a deadline passed, a lock
    /// was held too long): retry shortly.
    #[error("database unavailable: {detail}")]
    Unavailable { why: Unavailability, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Error::Corrupt(what.to_string())
    }
}

/// Why the database could not serve a request, in words for clients and
/// operators (`None`: it refused the request itself, or a bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailability {
    /// No connection could be had: pool timed out or closed, connection
    /// refused or reset, the server shutting down or starting up.
    Unreachable,
    /// A lock (the audit chain's, or a row's) was not obtained in time.
    LockTimeout,
    /// A statement ran past `statement_timeout` or was cancelled.
    StatementTimeout,
    /// A serialisation failure or deadlock: the transaction was rolled back.
    Contention,
}

impl Unavailability {
    /// A short, stable sentence for an error body.
    pub fn describe(self) -> &'static str {
        match self {
            Unavailability::Unreachable => "the database cannot be reached",
            Unavailability::LockTimeout => {
                "the database is busy: a write lock was not obtained in time"
            }
            Unavailability::StatementTimeout => "a database statement ran out of time",
            Unavailability::Contention => "the write clashed with another one and was rolled back",
        }
    }
}

impl Error {
    /// Whether the database could not do the work now (as opposed to
    /// refusing the request): the caller may retry.
    pub fn is_unavailable(&self) -> bool {
        self.unavailability().is_some()
    }

    /// How the database was unavailable, if it was.
    pub fn unavailability(&self) -> Option<Unavailability> {
        match self {
            Error::Unavailable { why, .. } => Some(*why),
            Error::Database(e) => classify(e),
            Error::Migration { .. }
            | Error::NotFound(_)
            | Error::Conflict(_)
            | Error::Domain(_)
            | Error::Corrupt(_)
            | Error::Open(_) => None,
        }
    }
}

/// Which database errors mean "not now" rather than "no".
fn classify(e: &sqlx::Error) -> Option<Unavailability> {
    use Unavailability as U;
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Some(U::Unreachable)
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Some(U::Unreachable),
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            classify_code(code, d.message())
        }
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes of unavailability.
fn classify_code(code: &str, message: &str) -> Option<Unavailability> {
    use Unavailability as U;
    match code {
        // connection exceptions
        c if c.starts_with("08") => Some(U::Unreachable),
        // admin shutdown, crash shutdown, cannot connect now (starting
        // up, "not accepting connections"), idle-session timeouts
        "57P01" | "57P02" | "57P03" | "57P05" | "25P03" => Some(U::Unreachable),
        // too many connections, out of memory or disk on the server
        "53300" | "53200" | "53100" => Some(U::Unreachable),
        "55P03" => Some(U::LockTimeout),
        // query_canceled: statement_timeout (or a cancel request)
        "57014" => Some(if message.contains("lock timeout") {
            U::LockTimeout
        } else {
            U::StatementTimeout
        }),
        "40001" | "40P01" => Some(U::Contention),
        // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended
        // codes (BUSY_RECOVERY, _SNAPSHOT, _TIMEOUT; LOCKED_SHAREDCACHE, _VTAB)
        "5" | "261" | "517" | "773" | "6" | "262" | "518" => Some(U::LockTimeout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Unavailability as U, classify_code};

    #[test]
    fn database_codes_of_unavailability() {
        for (code, message, want) in [
            ("08006", "connection failure", Some(U::Unreachable)),
            ("08003", "", Some(U::Unreachable)),
            (
                "57P01",
                "terminating connection due to administrator command",
                Some(U::Unreachable),
            ),
            ("57P02", "crash shutdown", Some(U::Unreachable)),
            (
                "57P03",
                "the database system is not accepting connections",
                Some(U::Unreachable),
            ),
            ("25P03", "idle-in-transaction timeout", Some(U::Unreachable)),
            ("53300", "too many connections", Some(U::Unreachable)),
            ("55P03", "could not obtain lock", Some(U::LockTimeout)),
            (
                "57014",
                "canceling statement due to lock timeout",
                Some(U::LockTimeout),
            ),
            (
                "57014",
                "canceling statement due to statement timeout",
                Some(U::StatementTimeout),
            ),
            ("40001", "could not serialize access", Some(U::Contention)),
            ("40P01", "deadlock detected", Some(U::Contention)),
            ("5", "database is locked", Some(U::LockTimeout)),
            ("517", "SQLITE_BUSY_SNAPSHOT", Some(U::LockTimeout)),
            ("6", "database table is locked", Some(U::LockTimeout)),
            // refusals stay refusals
            ("23505", "duplicate key", None),
            ("42501", "permission denied", None),
            ("2067", "UNIQUE constraint failed", None),
            ("19", "constraint failed", None),
            ("", "", None),
        ] {
            assert_eq!(classify_code(code, message), want, "{code} {message}");
        }
    }
}
