//! `tapis db`: the database's schema and, on PostgreSQL, the split between
//! two roles. The owner role owns tapis's tables and runs `tapis db
//! migrate`; the application role, which `tapis serve` runs as, reads and
//! writes rows and owns nothing, so it cannot drop the audit log's
//! append-only trigger or rewrite the log (`tapis_store::grants` has the
//! statements, `tapis db grants` prints them). Also here: turning a
//! refusal by the database into the step the operator has to take.

use std::process::ExitCode;

use anyhow::bail;

use super::open;
use crate::config::Settings;

/// `tapis db migrate`: open the database, which applies any pending
/// migration, and stop.
pub(super) async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let backend = store.backend();
    store.close().await;
    say!("the database schema is current ({})", backend.name());
    if backend == tapis_store::Backend::Postgres {
        say!(
            "run tapis serve as an application role that owns nothing: `tapis db grants --app-role NAME` prints its grants; apply them as this role after every migration"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tapis db grants`: print the SQL that gives the application role what
/// `tapis serve` needs and no more.
pub(super) fn grants(settings: &Settings, app_role: &str) -> anyhow::Result<ExitCode> {
    if !is_postgres(&settings.database_url()) {
        bail!(
            "tapis db grants is for PostgreSQL (give --database-url postgres://…); on SQLite there are no roles, and the database file's permissions (0600, owner only) are the boundary"
        );
    }
    let sql = tapis_store::grants::postgres_app_role_sql(app_role)?;
    for line in sql.lines() {
        super::print_line(line);
    }
    Ok(ExitCode::SUCCESS)
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The user name in a PostgreSQL URL, for messages.
fn url_user(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let (creds, _) = rest.rsplit_once('@')?;
    Some(creds.split(':').next().unwrap_or(creds))
}

/// Why the store could not be opened, saying what to do when PostgreSQL
/// refused the role a right: a role that may not change the schema meets
/// a pending migration (run `tapis db migrate` as the owner), or a role
/// without grants meets the tables (apply `tapis db grants`).
pub(crate) fn explain_open_error(url: &str, e: tapis_store::Error) -> anyhow::Error {
    let shown = tapis_store::redact_url(url);
    if !is_postgres(url) {
        return anyhow::Error::new(e).context(format!("cannot open the database {shown}"));
    }
    let role = url_user(url).unwrap_or("the role in --database-url");
    let refused = |text: &str| text.contains("permission denied") || text.contains("must be owner");
    let pending = match &e {
        tapis_store::Error::Migration { message, .. } => refused(message),
        tapis_store::Error::Database(inner) => {
            let denied = inner
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42501");
            if !denied {
                return anyhow::Error::new(e).context(format!("cannot open the database {shown}"));
            }
            // creating the migrations table (a database never migrated) is
            // a schema change; reading a table is a missing grant
            if !inner.to_string().contains("for schema") {
                return anyhow::Error::new(e).context(format!(
                    "the role {role} may not use tapis's tables in {shown}: as the owner role, apply the output of `tapis db grants --app-role {role}`"
                ));
            }
            true
        }
        _ => false,
    };
    if pending {
        return anyhow::Error::new(e).context(format!(
            "migrations are pending and the role {role} may not apply them (it owns nothing, as it should): run `tapis db migrate` with the URL of the role that owns tapis's tables (this was {shown}), apply `tapis db grants --app-role {role}` as that owner, then start again"
        ));
    }
    anyhow::Error::new(e).context(format!("cannot open the database {shown}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_role_is_read_from_the_url() {
        assert_eq!(
            super::url_user("postgres://app:pw@db:5432/tapis"),
            Some("app")
        );
        assert_eq!(super::url_user("postgres://app@db/tapis"), Some("app"));
        assert_eq!(super::url_user("postgres://db/tapis"), None);
    }
}
