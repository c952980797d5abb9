//! Test support: a fresh, empty database per test on either backend.
//!
//! PostgreSQL comes from `TAPIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own
//! database there and drops it when done. Which backends a run covers is
//! `TAPIS_TEST_BACKENDS` (default `sqlite,postgres`): CI runs both, and a
//! PostgreSQL that cannot be reached is a failure, not a skip.

use std::sync::Arc;

use sqlx::Connection;
use tapis_core::channel::{ChannelInput, NewChannel};
use tapis_core::party::{NewParty, PartyInput};
use tapis_core::{Clock, ManualClock, PartyId, Timestamp};

use crate::{Backend, Bootstrapped, Party, Principal, Store};

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

/// The moment most store tests start at: 2026-01-01T00:00:00Z.
pub const START: &str = "2026-01-01T00:00:00Z";

/// A manual clock standing at `rfc3339`.
pub fn clock_at(rfc3339: &str) -> ManualClock {
    ManualClock::new(Timestamp::parse("t", rfc3339).expect("test clock time"))
}

/// The first start of an empty store: the authority, its admin's secret
/// and the admin's principal.
pub async fn bootstrap(store: &Store) -> (Bootstrapped, Principal) {
    let boot = first_start(store).await;
    let admin = principal(store, &boot.admin_secret).await;
    (boot, admin)
}

/// The first start of an empty store, the authority "Ministry" and its
/// admin token, without using the token.
pub async fn first_start(store: &Store) -> Bootstrapped {
    store
        .bootstrap("Ministry", None)
        .await
        .expect("bootstrap")
        .expect("first start")
}

/// The principal a live token's secret authenticates.
pub async fn principal(store: &Store, secret: &str) -> Principal {
    store
        .authenticate(secret)
        .await
        .expect("auth")
        .expect("a live token")
}

/// A party of `kind` named `name`, with no contacts, domains or handles,
/// created by `by`.
pub async fn party(store: &Store, by: &Principal, kind: &str, name: &str) -> Party {
    let input = PartyInput {
        kind: kind.into(),
        name: name.into(),
        contacts: vec![],
        domains: vec![],
        handles: vec![],
    };
    let new = NewParty::parse(input).expect("party");
    store
        .create_party(&by.actor(), new)
        .await
        .expect("create party")
}

/// Gives `party` a webhook channel at `https://hooks.example/x`; returns
/// the webhook secret it is issued.
pub async fn webhook(store: &Store, by: &Principal, party: PartyId) -> String {
    let input = ChannelInput {
        webhook_url: Some("https://hooks.example/x".into()),
        ..Default::default()
    };
    let ch = NewChannel::parse(input, false).expect("channel");
    let (_, secret) = store
        .set_channel(&by.actor(), party, ch)
        .await
        .expect("set channel");
    secret.expect("a new webhook gets a secret")
}

/// A store on both backends' kind `backend`, at [`START`], with the
/// authority, a platform "P" with a webhook, and `notices` submitted
/// notices of one domain item each to it (so as many outbox messages).
pub async fn seeded_outbox(backend: Backend, notices: usize) -> (TestDb, Store, ManualClock) {
    let db = TestDb::new(backend).await;
    let clock = clock_at(START);
    let store = db.open(Arc::new(clock.clone())).await;
    let (boot, admin) = bootstrap(&store).await;
    let platform = party(&store, &admin, "platform", "P").await;
    webhook(&store, &admin, platform.id).await;
    let officer = officer(&store, &boot, &admin).await;
    for i in 0..notices {
        store
            .create_notice(&officer, domain_notice(&store, platform.id, i), None)
            .await
            .expect("create");
    }
    (db, store, clock)
}

/// An officer of the authority (a token naming no person).
pub async fn officer(store: &Store, boot: &Bootstrapped, admin: &Principal) -> Principal {
    let (_, secret) = store
        .create_token(
            &admin.actor(),
            boot.authority.id,
            tapis_core::role::Role::Officer,
            "o",
            None,
        )
        .await
        .expect("token");
    principal(store, &secret).await
}

/// A valid notice to `platform` of one domain item, `n{i}.example`.
pub fn domain_notice(store: &Store, platform: PartyId, i: usize) -> tapis_core::notice::NewNotice {
    let input = tapis_core::notice::NoticeInput {
        platform_id: platform.to_string(),
        category: "fraud".into(),
        urgency: "normal".into(),
        legal_basis: tapis_core::notice::LegalBasisInput {
            reference: "r".into(),
            text: "t".into(),
        },
        explanation: "e".into(),
        items: vec![tapis_core::notice::ItemInput {
            kind: "domain".into(),
            value: format!("n{i}.example"),
            native_id: None,
            evidence: vec![],
        }],
        territorial_scope: vec![],
        may_notify_user: None,
        draft: false,
    };
    tapis_core::notice::NewNotice::parse(
        input,
        &tapis_core::taxonomy::Taxonomy::bundled(),
        tapis_core::notice::Limits::default(),
        store.now(),
    )
    .expect("notice")
}

/// A platform named `name` that operates `domain` (so orders touching it
/// need an authoriser and are told to it), created by `by`.
pub async fn platform(store: &Store, by: &Principal, name: &str, domain: &str) -> Party {
    let input = PartyInput {
        kind: "platform".into(),
        name: name.into(),
        contacts: vec![],
        domains: vec![domain.into()],
        handles: vec![],
    };
    store
        .create_party(&by.actor(), NewParty::parse(input).expect("party"))
        .await
        .expect("create party")
}

/// A person's account at `party` with `roles`, signed in: the session
/// cookie's secret and the session (its principal, its CSRF token).
pub async fn signed_in(
    store: &Store,
    party: tapis_core::PartyId,
    login: &str,
    person: &str,
    roles: &[tapis_core::role::Role],
) -> (String, crate::Session) {
    const PASSWORD: &str = "a long enough passphrase";
    store
        .create_account(
            &tapis_core::audit::Actor::system("test"),
            party,
            login,
            &tapis_core::person::Person::parse(person).expect("person"),
            roles,
            Some(PASSWORD),
        )
        .await
        .expect("account");
    match store
        .sign_in(login, PASSWORD, crate::SessionPolicy::default())
        .await
        .expect("sign in")
    {
        crate::SignIn::Ok(secret, session) => (secret, *session),
        other => panic!("{login} did not sign in: {other:?}"),
    }
}
