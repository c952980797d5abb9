//! The register policy's and entries' unit tests.
use super::*;

fn policy(f: impl FnOnce(&mut PolicyInput)) -> RedactionPolicy {
    let mut i = PolicyInput::default();
    f(&mut i);
    RedactionPolicy::new(i, &[]).expect("policy")
}

#[test]
fn emails_and_phones_are_redacted_and_counted() {
    let p = RedactionPolicy::default();
    let mut w = Withheld::default();
    let t = p.redact_text(
        "Write to budi.santoso@mail.example or call (+62 812-3456-7890) or (021) 555 1234; law 11/2008, 2017-03-29, order 0123456789abc",
        &mut w,
    );
    assert_eq!(
        t,
        "Write to [email withheld] or call ([phone withheld]) or [phone withheld]; law 11/2008, 2017-03-29, order 0123456789abc"
    );
    assert_eq!((w.emails, w.phones), (1, 2));
}

#[test]
fn dates_and_references_are_not_phone_numbers() {
    let p = RedactionPolicy::default();
    let mut w = Withheld::default();
    for s in [
        "2017-03-29T09:00:00+07:00",
        "Law 11/2008 art. 40",
        "UU 19/2016",
        "id 018f3a2b-0000-7000-8000-000000000001",
        "+62 12",
    ] {
        assert_eq!(p.redact_text(s, &mut w), s);
    }
    assert_eq!(w, Withheld::default());
}

#[test]
fn patterns_and_switches() {
    let p = policy(|i| {
        i.patterns = vec![r"NIK\s*\d{16}".into()];
        i.redact_emails = false;
    });
    let mut w = Withheld::default();
    let t = p.redact_text("NIK 3171234567890123 a@b.example", &mut w);
    assert_eq!(t, "[withheld] a@b.example");
    assert_eq!((w.patterns, w.emails), (1, 0));
    assert!(
        RedactionPolicy::new(
            PolicyInput {
                patterns: vec!["(".into()],
                ..PolicyInput::default()
            },
            &[]
        )
        .is_err()
    );
    assert!(
        RedactionPolicy::new(
            PolicyInput {
                patterns: vec!["a*".into()],
                ..PolicyInput::default()
            },
            &[]
        )
        .is_err()
    );
    let unknown = RedactionPolicy::new(
        PolicyInput {
            withhold_locators: vec!["csam".into()],
            ..PolicyInput::default()
        },
        &["terrorism", "child_sexual_abuse"],
    );
    assert!(unknown.is_err_and(|e| e.to_string().contains("child_sexual_abuse")));
}

#[test]
fn the_hash_follows_the_policy_not_the_spelling() {
    let a = RedactionPolicy::default();
    let b = RedactionPolicy::default();
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.sha256().len(), 64);
    let c = policy(|i| {
        i.delay_days.insert("gambling".into(), 7);
    });
    assert_ne!(a.sha256(), c.sha256());
    // a zero delay is no delay
    let d = policy(|i| {
        i.delay_days.insert("gambling".into(), 0);
    });
    assert_eq!(a.sha256(), d.sha256());
}

fn facts(category: &str) -> OrderFacts {
    let t = Timestamp::from_unix_millis(1_490_000_000_000);
    OrderFacts {
        id: "o1".into(),
        state: "in_force".into(),
        action: "nxdomain".into(),
        category: category.into(),
        legal_basis_reference: "Law 11/2008".into(),
        legal_basis_text: "text".into(),
        explanation: Some("reported by siti@example.org".into()),
        issuing_authority: "Ministry".into(),
        proposer_person: Some("Budi Santoso".into()),
        approver_person: Some("Siti Rahma".into()),
        approved_at: t,
        effective_at: t,
        expires_at: t,
        activated_at: None,
        ended_at: None,
        end_reason: None,
        emergency: false,
        authorisation: Some(AuthorisationFacts {
            authoriser: "District Court".into(),
            signer: "Judge Dewi".into(),
            decision: "authorise".into(),
            at: t,
        }),
        names_count: 3,
        names: vec!["a.example".into(), "b.example".into(), "c.example".into()],
        platforms: vec![],
    }
}

#[test]
fn the_floor_stays_and_withholding_is_counted() {
    let p = RedactionPolicy::default();
    let o = order_entry(&p, facts("terrorism"));
    assert_eq!(o.names_count, 3);
    assert_eq!(o.names, vec!["withheld"; 3]);
    assert_eq!(o.withheld.locators, 3);
    assert_eq!(o.withheld.persons, 3);
    assert_eq!(o.withheld.emails, 1);
    assert!(
        o.withheld
            .reasons
            .contains(&"3 names withheld, category policy".to_owned())
    );
    let a = o.authorisation.expect("authoriser");
    assert_eq!(a.authoriser, "District Court");
    assert_eq!(a.signer.as_deref(), Some("withheld"));
    assert_eq!(o.legal_basis.reference, "Law 11/2008");
    let shown = order_entry(&p, facts("gambling"));
    assert_eq!(shown.names[0], "a.example");
    assert_eq!(shown.withheld.locators, 0);
    let named = policy(|i| i.publish_person_names = true);
    assert_eq!(
        order_entry(&named, facts("gambling")).proposer.as_deref(),
        Some("Budi Santoso")
    );
}

#[test]
fn delay_moves_the_listing() {
    let p = policy(|i| {
        i.delay_days.insert("gambling".into(), 3);
    });
    let t = Timestamp::from_unix_millis(0);
    assert_eq!(p.listed_at("gambling", t).unix_millis(), 3 * DAY_MS);
    assert_eq!(p.listed_at("fraud", t), t);
    assert_eq!(p.max_delay_days(), 3);
}

#[test]
fn days() {
    let d = Day::parse("d", "2017-03-29").expect("day");
    assert_eq!(d.to_string(), "2017-03-29");
    assert_eq!(Day::of(d.start()), d);
    assert_eq!(Day::of(d.end().plus_millis(-1)), d);
    assert_eq!(d.next().to_string(), "2017-03-30");
    assert!(Day::parse("d", "2017-3-29").is_err());
    assert!(Day::parse("d", "2017-02-30").is_err());
    assert_eq!(
        Day::of(Timestamp::from_unix_millis(-1)).to_string(),
        "1969-12-31"
    );
}
