//! Least privilege on PostgreSQL: what the role `tapis serve` runs as may do.
//!
//! The audit log is only worth something if the process that writes it
//! cannot rewrite it. The append-only triggers stop the application's SQL,
//! but a role that owns the tables can drop or disable them. So on
//! PostgreSQL the tables are owned by a migration role (the one that runs
//! `tapis db migrate`), and `tapis serve` connects as an application role
//! that may read and write rows but owns nothing: it cannot drop or disable
//! a trigger, alter a table, or update, delete or truncate audit events.
//! `tapis db grants --app-role NAME` prints the statements; the test
//! `tests/grants.rs` applies them and attacks the log as that role.

use crate::{Error, Result};

/// Tables whose rows the application may add and read but never change.
const APPEND_ONLY: &[&str] = &[
    "audit_events",
    "tlog_salts",
    "tlog_nodes",
    "tlog_checkpoints",
    "tlog_cosignatures",
];

/// Tables the application may only read.
const READ_ONLY: &[&str] = &["schema_migrations"];

/// Check a role name before it is put into SQL: lowercase letters, digits
/// and `_`, starting with a letter or `_`, at most 63 bytes (PostgreSQL's
/// identifier limit), so it never needs quoting.
pub fn parse_role_name(raw: &str) -> Result<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::Domain(tapis_core::Error::invalid(
            "app_role",
            format!(
                "role name {raw:?}: use lowercase letters, digits and '_' (at most 63), starting with a letter"
            ),
        )))
    }
}

/// The statements that give `app_role` what `tapis serve` needs and no
/// more. Run them as the owner of tapis's tables (the role that ran the
/// migrations), after every migration: new tables get their grants from the
/// default privileges set here, but the append-only rules are per table.
pub fn postgres_app_role_sql(app_role: &str) -> Result<String> {
    let role = parse_role_name(app_role)?;
    let mut sql = format!(
        "-- Least privilege for the role tapis serve runs as. Run as the owner of\n\
         -- tapis's tables (the role that ran `tapis db migrate`), after each upgrade.\n\
         -- The role itself is created by the database administrator, e.g.:\n\
         --   CREATE ROLE {role} LOGIN PASSWORD '…';\n\
         REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};\n\
         REVOKE CREATE ON SCHEMA public FROM {role};\n\
         GRANT USAGE ON SCHEMA public TO {role};\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};\n\
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};\n\
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};\n\
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role};\n"
    );
    for t in APPEND_ONLY {
        sql.push_str(&format!(
            "REVOKE UPDATE, DELETE, TRUNCATE ON {t} FROM {role};\n"
        ));
    }
    for t in READ_ONLY {
        sql.push_str(&format!(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {t} FROM {role};\n"
        ));
    }
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(parse_role_name("tapis_app").is_ok());
        assert!(parse_role_name("_x1").is_ok());
        for bad in [
            "",
            "1x",
            "Tapis",
            "a;DROP TABLE x",
            "a b",
            "a\"b",
            &"a".repeat(64),
        ] {
            assert!(parse_role_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_log_is_append_only_for_the_app_role() {
        let sql = postgres_app_role_sql("tapis_app").expect("sql");
        assert!(sql.contains("REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM tapis_app;"));
        assert!(
            !sql.contains("TRIGGER"),
            "the app role is never given TRIGGER"
        );
        assert!(postgres_app_role_sql("x; DROP").is_err());
    }
}
