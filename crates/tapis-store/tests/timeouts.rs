//! Every connection tapis opens carries the configured timeouts: on
//! PostgreSQL `statement_timeout`, `lock_timeout`,
//! `idle_in_transaction_session_timeout`, keepalives and
//! `application_name`; on SQLite `busy_timeout`. (What they do is proven on
//! the real binary in `crates/tapis/tests/faults_database.rs`.)

use std::sync::Arc;
use std::time::Duration;

use tapis_core::SystemClock;
use tapis_store::testing::{TestDb, backends};
use tapis_store::{Backend, Options, Store, Timeouts};

#[tokio::test]
async fn sessions_carry_the_configured_timeouts() {
    let timeouts = Timeouts {
        statement: Duration::from_millis(3456),
        lock: Duration::from_millis(2345),
        idle_in_transaction: Duration::from_millis(1234),
        acquire: Duration::from_secs(3),
        sqlite_busy: Duration::from_millis(4567),
        keepalive_idle: Duration::from_secs(9),
    };
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = Store::open_with(
            &db.url,
            Arc::new(SystemClock),
            Options {
                timeouts,
                ..Options::default()
            },
        )
        .await
        .expect("open");
        assert_eq!(store.timeouts(), timeouts);
        let expected: &[(&str, &str)] = match backend {
            Backend::Postgres => &[
                ("statement_timeout", "3456ms"),
                ("lock_timeout", "2345ms"),
                ("idle_in_transaction_session_timeout", "1234ms"),
                ("application_name", "tapis"),
                ("tcp_keepalives_idle", "9"),
                ("tcp_keepalives_interval", "3"),
                ("tcp_keepalives_count", "3"),
            ],
            Backend::Sqlite => &[("busy_timeout", "4567")],
        };
        for (name, want) in expected {
            let got = store.session_setting(name).await.expect(name);
            assert_eq!(&got, want, "{backend:?} {name}");
        }
        store.close().await;
        db.cleanup().await;
    }
}

/// The stuck session: a writer takes the chain lock and then goes
/// silent inside its transaction (a frozen process, a cut connection).
/// PostgreSQL ends that session after `idle_in_transaction_session_timeout`
/// and its lock goes with it, so another process can write again; the
/// stalled writer's transaction cannot commit.
#[tokio::test]
async fn a_writer_idle_in_transaction_loses_the_chain_lock() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let open = |idle_ms: u64| {
        Store::open_with(
            &db.url,
            Arc::new(SystemClock),
            Options {
                timeouts: Timeouts {
                    idle_in_transaction: Duration::from_millis(idle_ms),
                    ..Timeouts::default()
                },
                ..Options::default()
            },
        )
    };
    let stalled = open(300).await.expect("open");
    let other = open(300).await.expect("open");
    let tx = stalled.begin_write_for_test().await.expect("take the lock");
    // the other process waits for the lock only until the server ends the
    // stalled session (its own lock timeout is 10 s)
    let took = other
        .check_writable(Duration::from_secs(5))
        .await
        .expect("the lock is released by the server");
    eprintln!("the chain lock came back {took:?} after the writer stalled (idle timeout 300 ms)");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        tx.commit().await.is_err(),
        "the stalled writer's session was ended"
    );
    stalled.close().await;
    other.close().await;
    db.cleanup().await;
}
