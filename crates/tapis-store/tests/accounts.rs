//! People's accounts on every backend: an invitation is redeemed for an
//! account whose password the authority never sees; sign-in starts a
//! session that is a principal with the party's scope; wrong passwords
//! lock the account with back-off (audited); sessions end by idle time,
//! absolute lifetime, sign-out and a password reset; a one-time link
//! works once; the authority cannot invite a second "first member" once
//! a party has an account.

use std::sync::Arc;

use tapis_core::party::{NewParty, PartyInput};
use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::{ManualClock, PartyId, Timestamp};
use tapis_store::testing::{TestDb, backends};
use tapis_store::{Backend, Error, Principal, SessionPolicy, SignIn, Store};

async fn admin(store: &Store) -> Principal {
    let boot = store.bootstrap("Ministry", None).await.expect("boot");
    let secret = boot.expect("first start").admin_secret;
    store
        .authenticate(&secret)
        .await
        .expect("auth")
        .expect("admin")
}

async fn party(store: &Store, by: &Principal, kind: &str, name: &str) -> PartyId {
    store
        .create_party(
            &by.actor(),
            NewParty::parse(PartyInput {
                kind: kind.into(),
                name: name.into(),
                contacts: vec![],
                domains: vec![],
                handles: vec![],
            })
            .expect("party"),
        )
        .await
        .expect("create party")
        .id
}

const POLICY: SessionPolicy = SessionPolicy {
    idle_ms: 60_000,
    absolute_ms: 600_000,
};

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse("t", "2026-01-01T00:00:00Z").expect("t"),
    ));
    let store = db.open(clock.clone()).await;
    let boss = admin(&store).await;
    let platform = party(&store, &boss, "platform", "Chat").await;

    // the platform's person redeems the invitation for an account
    let (_, code) = store
        .create_invitation(&boss, platform, Role::PlatformAgent)
        .await
        .expect("invite");
    let (name, _, role) = store.invitation_for(&code).await.expect("live code");
    assert_eq!((name.as_str(), role), ("Chat", Role::PlatformAgent));
    let person = Person::parse("Dewi Lestari").expect("person");
    let account = store
        .accept_invitation_as_account(&code, "dewi@chat", &person, "a long enough secret")
        .await
        .expect("account");
    assert_eq!(account.party_id, platform);
    assert!(matches!(
        store
            .accept_invitation_as_account(&code, "other@chat", &person, "a long enough secret")
            .await,
        Err(Error::NotFound("invitation"))
    ));
    // the authority cannot invite another "first member" now
    assert!(matches!(
        store
            .create_invitation(&boss, platform, Role::PlatformAgent)
            .await,
        Err(Error::Conflict(_))
    ));

    // sign-in: a session is a principal scoped to the party
    let SignIn::Ok(secret, session) = store
        .sign_in("DEWI@chat", "a long enough secret", POLICY)
        .await
        .expect("sign in")
    else {
        panic!("the right password signs in")
    };
    assert_eq!(session.principal.party_id, platform);
    assert_eq!(session.principal.role, Role::PlatformAgent);
    assert_eq!(session.principal.person.as_ref(), Some(&person));
    let again = store
        .session(&secret, POLICY)
        .await
        .expect("s")
        .expect("live");
    assert_eq!(again.csrf, session.csrf);
    assert!(store.session("forged", POLICY).await.expect("s").is_none());

    // idle expiry
    clock.advance_millis(61_000);
    assert!(
        store.session(&secret, POLICY).await.expect("s").is_none(),
        "idle session ends"
    );

    // absolute expiry, even when used
    let SignIn::Ok(secret, _) = store
        .sign_in("dewi@chat", "a long enough secret", POLICY)
        .await
        .expect("s")
    else {
        panic!("sign in")
    };
    for _ in 0..13 {
        clock.advance_millis(50_000);
        let _ = store.session(&secret, POLICY).await.expect("s");
    }
    assert!(
        store.session(&secret, POLICY).await.expect("s").is_none(),
        "absolute lifetime ends it"
    );

    // sign out
    let SignIn::Ok(secret, s) = store
        .sign_in("dewi@chat", "a long enough secret", POLICY)
        .await
        .expect("s")
    else {
        panic!("sign in")
    };
    store.sign_out(&secret, &s).await.expect("out");
    assert!(store.session(&secret, POLICY).await.expect("s").is_none());

    // lockout after five wrong passwords, even for the right one then
    for i in 1..=5 {
        let r = store
            .sign_in("dewi@chat", "wrong password!!", POLICY)
            .await
            .expect("s");
        assert_eq!(matches!(r, SignIn::Locked(_)), i == 5, "attempt {i}: {r:?}");
    }
    assert!(matches!(
        store
            .sign_in("dewi@chat", "a long enough secret", POLICY)
            .await
            .expect("s"),
        SignIn::Locked(_)
    ));
    clock.advance_millis(61_000);
    assert!(matches!(
        store
            .sign_in("dewi@chat", "a long enough secret", POLICY)
            .await
            .expect("s"),
        SignIn::Ok(..)
    ));
    assert!(matches!(
        store
            .sign_in("nobody", "a long enough secret", POLICY)
            .await
            .expect("s"),
        SignIn::Refused
    ));

    // a host-made admin account without a password, set by one-time link
    let authority = boss.party_id;
    let officer = store
        .create_account(
            &boss.actor(),
            authority,
            "siti",
            &Person::parse("Siti").expect("p"),
            &[Role::Officer, Role::Approver],
            None,
        )
        .await
        .expect("account");
    assert!(!officer.has_password);
    assert!(matches!(
        store
            .sign_in("siti", "anything at all!", POLICY)
            .await
            .expect("s"),
        SignIn::Refused
    ));
    let (_, link) = store
        .issue_account_link(&boss.actor(), "siti")
        .await
        .expect("link");
    assert!(store.use_account_link(&link, "short").await.is_err());
    store
        .use_account_link(&link, "officer's own secret")
        .await
        .expect("set");
    assert!(
        store
            .use_account_link(&link, "officer's own secret")
            .await
            .is_err(),
        "once"
    );
    let SignIn::Ok(secret, s) = store
        .sign_in("siti", "officer's own secret", POLICY)
        .await
        .expect("s")
    else {
        panic!("sign in")
    };
    assert_eq!(s.principal.role, Role::Officer);
    store
        .switch_role(&secret, &s, Role::Approver)
        .await
        .expect("switch");
    let s = store
        .session(&secret, POLICY)
        .await
        .expect("s")
        .expect("live");
    assert_eq!(s.principal.role, Role::Approver);
    assert!(store.switch_role(&secret, &s, Role::Admin).await.is_err());
    // a role that does not fit the party is refused
    assert!(
        store
            .create_account(
                &boss.actor(),
                platform,
                "x-admin",
                &person,
                &[Role::Admin],
                None
            )
            .await
            .is_err()
    );

    // the account is backed by a token of its own id: revoking it (as the
    // party's members may) ends its sessions and its sign-ins
    let SignIn::Ok(secret, s) = store
        .sign_in("dewi@chat", "a long enough secret", POLICY)
        .await
        .expect("s")
    else {
        panic!("sign in")
    };
    store
        .revoke_token_by(&s.principal, s.principal.token_id)
        .await
        .expect("revoke");
    assert!(store.session(&secret, POLICY).await.expect("s").is_none());
    assert!(matches!(
        store
            .sign_in("dewi@chat", "a long enough secret", POLICY)
            .await
            .expect("s"),
        SignIn::Refused
    ));

    // every change is on the log, and the chain verifies
    let events = store.all_audit_events().await.expect("events");
    for name in [
        "account.created",
        "account.signed_in",
        "account.signed_out",
        "account.locked",
        "account.link_issued",
        "account.password_set",
        "invitation.accepted",
    ] {
        assert!(events.iter().any(|e| e.action == name), "{name} on the log");
    }
    assert!(
        store
            .verify_audit()
            .await
            .expect("verify")
            .first_break
            .is_none()
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_sessions_and_lockout_on_every_backend() {
    for b in backends() {
        story(b).await;
    }
}
