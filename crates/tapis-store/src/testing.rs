//! Test support: a fresh, empty database per test on either backend.
//!
//! PostgreSQL comes from `TAPIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own
//! database there and drops it when done. Which backends a run covers is
//! `TAPIS_TEST_BACKENDS` (default `sqlite,postgres`): CI runs both, and a
//! PostgreSQL that cannot be reached is a failure, not a skip.

use std::sync::Arc;

use sqlx::Connection;
use tapis_core::Clock;

use crate::{Backend, Store};

/// Backends this test run must cover.
pub fn backends() -> Vec<Backend> {
    let spec = std::env::var("TAPIS_TEST_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    spec.split(',')
        .filter_map(|b| match b.trim() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" => Some(Backend::Postgres),
            "" => None,
            other => panic!("TAPIS_TEST_BACKENDS names unknown backend {other:?}"),
        })
        .collect()
}

fn admin_url() -> String {
    std::env::var("TAPIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("tapis.db").display());
                TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("tapis_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e} (start it, or set TAPIS_TEST_BACKENDS=sqlite)"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn open(&self, clock: Arc<dyn Clock>) -> Store {
        Store::open(&self.url, clock)
            .await
            .expect("open test store")
    }

    /// Drop the PostgreSQL database (SQLite's goes with its temp dir).
    pub async fn cleanup(self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}
