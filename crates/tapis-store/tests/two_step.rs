//! Two-step sign-in on every backend: a person sets it up with a code
//! from the new secret; sign-in then needs a right, unspent code (a
//! missing or wrong one is a failed sign-in that counts towards lockout);
//! turning it off takes a code; a one-time password link clears it; every
//! change is on the audit log; the secret is sealed at rest.

use std::sync::Arc;

use tapis_core::person::Person;
use tapis_core::role::Role;
use tapis_core::totp::{TotpSecret, step_of};
use tapis_store::testing::{START, TestDb, backends, bootstrap, clock_at, party};
use tapis_store::{Error, SessionPolicy, SignIn};

const POLICY: SessionPolicy = SessionPolicy {
    idle_ms: 60_000,
    absolute_ms: 600_000,
};
const PASSWORD: &str = "a long enough secret";

fn code(secret: &TotpSecret, clock: &tapis_core::ManualClock) -> String {
    use tapis_core::Clock;
    format!("{:06}", secret.code_at_step(step_of(clock.now())))
}

/// A code that is certainly wrong now.
fn wrong(secret: &TotpSecret, clock: &tapis_core::ManualClock) -> String {
    let right: u32 = code(secret, clock).parse().expect("digits");
    format!("{:06}", (right + 1) % 1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_sign_in_on_every_backend() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let clock = clock_at(START);
        let store = db.open(Arc::new(clock.clone())).await;
        let (_, admin) = bootstrap(&store).await;
        let platform = party(&store, &admin, "platform", "Chat").await;
        let person = Person::parse("Dewi Lestari").expect("person");
        let account = store
            .create_account(
                &admin.actor(),
                platform.id,
                "dewi@chat",
                &person,
                &[Role::PlatformAgent],
                Some(PASSWORD),
            )
            .await
            .expect("account");
        assert!(!account.two_step);

        // set up: nothing changes until a right code confirms it
        let secret = store.begin_two_step(&account).await.expect("begin");
        assert_eq!(
            store.pending_two_step(&account).await.expect("pending"),
            Some(secret.clone())
        );
        assert!(matches!(
            store
                .confirm_two_step(&account, &wrong(&secret, &clock))
                .await,
            Err(Error::Domain(_))
        ));
        let signed = |code: Option<String>| {
            let store = store.clone();
            async move {
                store
                    .sign_in_with_code("dewi@chat", PASSWORD, code.as_deref(), POLICY)
                    .await
                    .expect("sign in")
            }
        };
        assert!(matches!(signed(None).await, SignIn::Ok(..)), "{backend:?}");
        store
            .confirm_two_step(&account, &code(&secret, &clock))
            .await
            .expect("confirm");
        let account = store.get_account("dewi@chat").await.expect("account");
        assert!(account.two_step);
        assert_eq!(
            store.pending_two_step(&account).await.expect("pending"),
            None
        );

        // now a code is needed, and each works once
        assert!(matches!(signed(None).await, SignIn::Refused), "{backend:?}");
        assert!(matches!(
            signed(Some(wrong(&secret, &clock))).await,
            SignIn::Refused
        ));
        // the confirming code's step is spent
        assert!(matches!(
            signed(Some(code(&secret, &clock))).await,
            SignIn::Refused
        ));
        clock.advance_millis(30_000);
        let now_code = code(&secret, &clock);
        assert!(
            matches!(signed(Some(now_code.clone())).await, SignIn::Ok(..)),
            "{backend:?}"
        );
        assert!(
            matches!(signed(Some(now_code)).await, SignIn::Refused),
            "replayed"
        );
        // a right code with a wrong password is still a refusal
        clock.advance_millis(30_000);
        assert!(matches!(
            store
                .sign_in_with_code(
                    "dewi@chat",
                    "a wrong password!!",
                    Some(&code(&secret, &clock)),
                    POLICY
                )
                .await
                .expect("sign in"),
            SignIn::Refused
        ));

        // turning it off takes a current code
        assert!(matches!(
            store.disable_two_step(&account, "not a code").await,
            Err(Error::Domain(_))
        ));
        clock.advance_millis(30_000);
        store
            .disable_two_step(&account, &code(&secret, &clock))
            .await
            .expect("disable");
        assert!(matches!(signed(None).await, SignIn::Ok(..)));

        // set up again, then an admin's link clears it with the password
        let secret = store.begin_two_step(&account).await.expect("begin");
        clock.advance_millis(30_000);
        store
            .confirm_two_step(&account, &code(&secret, &clock))
            .await
            .expect("confirm");
        let (_, link) = store
            .issue_account_link(&admin.actor(), "dewi@chat")
            .await
            .expect("link");
        let reset = store
            .use_account_link(&link, "a brand new passphrase")
            .await
            .expect("reset");
        assert!(!reset.two_step);
        assert!(matches!(
            store
                .sign_in("dewi@chat", "a brand new passphrase", POLICY)
                .await
                .expect("sign in"),
            SignIn::Ok(..)
        ));

        // on the record: enabled twice, disabled once, a reset that cleared it
        let events = store.all_audit_events().await.expect("events");
        let count = |a: &str| events.iter().filter(|e| e.action == a).count();
        assert_eq!(count("account.totp_enabled"), 2, "{backend:?}");
        assert_eq!(count("account.totp_disabled"), 1, "{backend:?}");
        assert!(events.iter().any(|e| e.action == "account.password_set"
            && e.after["two_step_cleared"] == serde_json::json!(true)));
        assert!(store.verify_audit().await.expect("verify").ok());
        db.cleanup().await;
    }
}
