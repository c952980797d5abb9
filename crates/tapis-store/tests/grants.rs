//! The audit log against a dishonest operator on PostgreSQL: with the grants
//! `tapis db grants` prints, the role tapis serve runs as can do its work
//! (open the store, write, append to the log) but cannot drop or disable
//! the append-only trigger, change or remove audit events, or create
//! anything. Runs when PostgreSQL is among the test backends (always in CI).

use std::sync::Arc;

use sqlx::Connection;
use tapis_store::testing::{START, TestDb, backends, clock_at, first_start, party, principal};
use tapis_store::{Backend, Store, grants};

#[tokio::test]
async fn the_app_role_cannot_rewrite_the_log() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let clock = clock_at(START);
    // The owner (the test's admin role) migrates and bootstraps.
    let owner = db.open(Arc::new(clock.clone())).await;
    let boot = first_start(&owner).await;
    owner.close().await;

    let role = format!("tapis_app_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&db.url).await.expect("owner");
    sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD 'app-secret'"))
        .execute(&mut admin)
        .await
        .expect("create role");
    let sql = grants::postgres_app_role_sql(&role).expect("grants");
    sqlx::raw_sql(&sql)
        .execute(&mut admin)
        .await
        .expect("apply grants");

    // The application role: user and password in place of the owner's.
    let (scheme_rest, db_name) = db.url.rsplit_once('/').expect("url");
    let host = scheme_rest
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or("127.0.0.1:5432");
    let app_url = format!("postgres://{role}:app-secret@{host}/{db_name}");
    let app = Store::open(&app_url, Arc::new(clock.clone()))
        .await
        .expect("the app role opens a migrated store without creating anything");
    // the application role writes and appends to the log
    let admin_principal = principal(&app, &boot.admin_secret).await;
    party(&app, &admin_principal, "platform", "P").await;
    assert!(app.verify_audit().await.expect("verify").ok());
    app.close().await;

    let mut conn = sqlx::PgConnection::connect(&app_url)
        .await
        .expect("app conn");
    for attack in [
        "DROP TRIGGER audit_events_no_change ON audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change",
        "UPDATE audit_events SET action = 'x' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events",
        "DROP TABLE audit_events",
        "CREATE TABLE shadow (x int)",
        "DELETE FROM schema_migrations",
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    ] {
        let err = sqlx::raw_sql(attack)
            .execute(&mut conn)
            .await
            .expect_err(attack);
        let text = err.to_string();
        assert!(
            text.contains("permission denied") || text.contains("must be owner"),
            "{attack}: {text}"
        );
    }
    let _ = conn.close().await;

    // The chain is intact as the owner sees it.
    let owner = db.open(Arc::new(clock)).await;
    assert!(owner.verify_audit().await.expect("verify").ok());
    owner.close().await;
    let _ = admin.close().await;
    db.cleanup().await;
    if let Ok(mut c) = sqlx::PgConnection::connect(
        &std::env::var("TAPIS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )
    .await
    {
        let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
            .execute(&mut c)
            .await;
    }
}
