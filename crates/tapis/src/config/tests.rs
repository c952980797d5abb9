//! Settings: precedence, refusals, redaction and the example file.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn precedence_is_defaults_file_env_cli() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tapis.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nauthority_name = \"File\"\nlog = \"debug\"\n[limits]\nmax_items = 10\n").expect("write");
    let (s, _) = Settings::load(Some(&file), &env(&[]), &Overrides::default()).expect("load");
    assert_eq!(s.listen.port(), 9000);
    assert_eq!(s.authority_name, "File");
    assert_eq!(s.limits.max_items, 10);
    assert_eq!(
        s.limits.max_body_bytes,
        1024 * 1024,
        "unset keys keep defaults"
    );

    let e = env(&[
        ("TAPIS_LISTEN", "127.0.0.1:9001"),
        ("TAPIS_AUTHORITY_NAME", "Env"),
    ]);
    let (s, _) = Settings::load(Some(&file), &e, &Overrides::default()).expect("load");
    assert_eq!(s.listen.port(), 9001);
    assert_eq!(s.authority_name, "Env");
    assert_eq!(s.log, "debug", "file value survives where env is silent");

    let cli = Overrides {
        listen: Some("127.0.0.1:9002".parse().expect("addr")),
        ..Default::default()
    };
    let (s, _) = Settings::load(Some(&file), &e, &cli).expect("load");
    assert_eq!(s.listen.port(), 9002);
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tapis.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").expect("write");
    let err = Settings::load(Some(&file), &env(&[]), &Overrides::default()).expect_err("typo");
    assert!(
        format!("{err:#}").contains("unknown field `lisen`"),
        "{err:#}"
    );

    let err = Settings::load(
        None,
        &env(&[("TAPIS_LISTEN", "nowhere")]),
        &Overrides::default(),
    )
    .expect_err("bad");
    assert!(err.to_string().contains("TAPIS_LISTEN"), "{err}");
    let err = Settings::load(
        None,
        &env(&[("TAPIS_DATABASE_URL", "mysql://x")]),
        &Overrides::default(),
    )
    .expect_err("bad");
    assert!(err.to_string().contains("postgres://"), "{err}");

    let (_, warnings) =
        Settings::load(None, &env(&[("TAPIS_LISTN", "x")]), &Overrides::default()).expect("load");
    assert_eq!(
        warnings,
        ["ignoring unknown environment variable TAPIS_LISTN"]
    );
}

#[test]
fn debug_never_shows_the_database_password() {
    let s = Settings {
        database_url: "postgres://tapis:hunter2@db/tapis".into(),
        ..Default::default()
    };
    let shown = format!("{s:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("tapis:***@db"), "{shown}");
}

#[test]
fn edge_limits_come_from_file_and_env_and_are_bounded() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tapis.toml");
    std::fs::write(
        &file,
        "[limits]\nmax_connections = 100\nconnections_per_address = 10\nheader_read_timeout_secs = 5\nanonymous_per_minute = 30\nanonymous_burst = 7\nstreams_per_token = 2\n",
    )
    .expect("write");
    let (s, _) = Settings::load(
        Some(&file),
        &env(&[("TAPIS_LIMITS_ANONYMOUS_BURST", "9")]),
        &Overrides::default(),
    )
    .expect("load");
    let e = s.limits.edge();
    assert_eq!(e.max_connections, 100);
    assert_eq!(e.connections_per_address, 10);
    assert_eq!(e.header_read_timeout, std::time::Duration::from_secs(5));
    assert_eq!(e.anonymous_per_minute, 30);
    assert_eq!(e.anonymous_burst, 9, "the environment wins over the file");
    assert_eq!(e.streams_per_token, 2);
    assert_eq!(
        Settings::default().limits.isp_rules(false),
        tapis_core::isp::IspRules::default(),
        "the ISP rules' defaults are core's"
    );
    let (s, _) = Settings::load(
        None,
        &env(&[("TAPIS_LIMITS_TRANSFER_HOSTS_PER_ISP", "2")]),
        &Overrides::default(),
    )
    .expect("load");
    assert_eq!(s.limits.isp_rules(true).max_transfer_hosts, 2);
    assert_eq!(
        Settings::default().limits.edge(),
        tapis_http::edge::EdgeLimits::default(),
        "the defaults are the edge's"
    );

    for (var, value, says) in [
        (
            "TAPIS_LIMITS_MAX_CONNECTIONS",
            "0",
            "limits.max_connections is 0",
        ),
        (
            "TAPIS_LIMITS_CONNECTIONS_PER_ADDRESS",
            "5000",
            "at most limits.max_connections",
        ),
        (
            "TAPIS_LIMITS_HEADER_READ_TIMEOUT_SECS",
            "0",
            "between 1 and 300 (default 10)",
        ),
        (
            "TAPIS_LIMITS_ANONYMOUS_PER_MINUTE",
            "0",
            "limits.anonymous_per_minute",
        ),
        (
            "TAPIS_LIMITS_ANONYMOUS_BURST",
            "0",
            "limits.anonymous_burst",
        ),
        (
            "TAPIS_LIMITS_STREAMS_PER_TOKEN",
            "0",
            "limits.streams_per_token",
        ),
        (
            "TAPIS_LIMITS_TRANSFER_HOSTS_PER_ISP",
            "65",
            "limits.transfer_hosts_per_isp",
        ),
        (
            "TAPIS_LIMITS_STREAMS_PER_TOKEN",
            "many",
            "TAPIS_LIMITS_STREAMS_PER_TOKEN",
        ),
    ] {
        let err =
            Settings::load(None, &env(&[(var, value)]), &Overrides::default()).expect_err(var);
        assert!(format!("{err:#}").contains(says), "{var}={value}: {err:#}");
    }
}

#[test]
fn the_secrets_key_is_never_shown_and_is_checked() {
    let key = "q0vYQ1O0cO6cxm4dH6XyZk1b8m0b4pJj0u8bHc3fR1U=";
    let (s, warnings) = Settings::load(
        None,
        &env(&[("TAPIS_SECRETS_KEY", key)]),
        &Overrides::default(),
    )
    .expect("load");
    assert!(warnings.is_empty(), "{warnings:?}");
    let shown = format!("{s:?}");
    assert!(!shown.contains(key) && !shown.contains("q0vYQ"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    let sealed = s.secret_key().expect("key");
    assert!(sealed.is_set());
    assert!(!format!("{sealed:?}").contains("q0vYQ"));

    let (s, _) = Settings::load(
        None,
        &env(&[("TAPIS_SECRETS_KEY", "not-a-key-hunter2")]),
        &Overrides::default(),
    )
    .expect("load");
    let err = format!("{:#}", s.secret_key().expect_err("bad key"));
    assert!(
        err.contains("TAPIS_SECRETS_KEY") && err.contains("urandom"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "a bad key is not echoed: {err}");

    let (s, _) = Settings::load(
        None,
        &env(&[
            ("TAPIS_SECRETS_KEY", key),
            ("TAPIS_SECRETS_KEY_FILE", "/nonexistent"),
        ]),
        &Overrides::default(),
    )
    .expect("load");
    assert!(s.secret_key().is_err(), "one source, not two");
    assert!(!Settings::default().secret_key().expect("none").is_set());
}

#[test]
fn the_example_config_is_valid() {
    let example = include_str!("../../../../tapis.example.toml");
    let s: Settings = toml::from_str(example).expect("example parses");
    assert_eq!(s, Settings::default(), "the example documents the defaults");
}

#[test]
fn web_settings_from_file_and_environment() {
    let (s, w) = Settings::load(
        None,
        &env(&[
            ("TAPIS_WEB_TIME_ZONE", "+05:30"),
            ("TAPIS_WEB_ZONE_LABEL", "IST"),
            ("TAPIS_WEB_SESSION_IDLE_MINUTES", "5"),
            ("TAPIS_WEB_SECURE_COOKIES", "true"),
        ]),
        &Overrides::default(),
    )
    .expect("load");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        s.web.offset().expect("offset"),
        time::UtcOffset::from_hms(5, 30, 0).expect("o")
    );
    assert_eq!(s.web.zone_label, "IST");
    assert_eq!(s.web.session_idle_minutes, 5);
    assert_eq!(s.web.secure_cookies, Some(true));
    assert_eq!(
        Settings::default().web.offset().expect("default"),
        time::UtcOffset::from_hms(7, 0, 0).expect("o")
    );
    for (k, v, says) in [
        ("TAPIS_WEB_TIME_ZONE", "WIB", "web.time_zone"),
        (
            "TAPIS_WEB_SESSION_IDLE_MINUTES",
            "0",
            "session_idle_minutes",
        ),
        (
            "TAPIS_WEB_SECURE_COOKIES",
            "yes",
            "TAPIS_WEB_SECURE_COOKIES",
        ),
    ] {
        let err =
            Settings::load(None, &env(&[(k, v)]), &Overrides::default()).expect_err("refused");
        assert!(format!("{err:#}").contains(says), "{k}={v}: {err:#}");
    }
}

#[test]
fn transparency_settings_from_the_environment_are_checked() {
    let w = "witness.example/w1+18041f2a+BBl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h";
    let (s, warnings) = Settings::load(
        None,
        &env(&[
            ("TAPIS_TRANSPARENCY_ORIGIN", "kominfo.example/tapis"),
            ("TAPIS_TRANSPARENCY_CHECKPOINT_INTERVAL_SECS", "5"),
            ("TAPIS_TRANSPARENCY_WITNESSES", &format!("{w}, ")),
        ]),
        &Overrides::default(),
    )
    .expect("load");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.transparency.checkpoint_interval_secs, 5);
    let log = s.transparency.log_options().expect("valid");
    assert_eq!(log.origin, "kominfo.example/tapis");
    assert_eq!(log.witnesses.len(), 1);
    let mut bad = s.transparency.clone();
    bad.origin = "not an origin".into();
    assert!(bad.log_options().is_err());
    bad.origin = "ok.example/log".into();
    bad.witnesses =
        vec!["witness.example/w1+00000000+BBl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h".into()];
    let e = bad.log_options().expect_err("wrong key id").to_string();
    assert!(e.contains("key id does not match"), "{e}");
}

#[test]
fn flag_settings_from_file_with_defaults_and_refusals() {
    let d = Settings::default().flags;
    assert_eq!(d.pow_difficulty, 20);
    assert_eq!(d.accuracy().expect("defaults").window_days, 365);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tapis.toml");
    std::fs::write(
        &file,
        "[flags]\naccuracy_threshold = 0.8\naccuracy_window_days = 90\npow_difficulty = 12\n",
    )
    .expect("write");
    let (s, _) = Settings::load(Some(&file), &env(&[]), &Overrides::default()).expect("load");
    let a = s.flags.accuracy().expect("valid");
    assert_eq!((a.threshold, a.window_days, a.min_reviewed), (0.8, 90, 10));
    assert_eq!(s.flags.pow().expect("valid").difficulty, 12);
    // out of range is refused naming the key; unknown keys too
    for (text, key) in [
        ("accuracy_threshold = 1.5", "flags.accuracy_threshold"),
        ("accuracy_window_days = 0", "flags.accuracy_window_days"),
        ("accuracy_min_reviewed = 0", "flags.accuracy_min_reviewed"),
        ("pow_difficulty = 0", "flags.pow_difficulty"),
        ("pow_difficulty = 40", "flags.pow_difficulty"),
        ("pow_max_age_secs = 5", "flags.pow_max_age_secs"),
    ] {
        std::fs::write(&file, format!("[flags]\n{text}\n")).expect("write");
        let (s, _) = Settings::load(Some(&file), &env(&[]), &Overrides::default()).expect("load");
        let err = s
            .flags
            .accuracy()
            .and_then(|_| s.flags.pow())
            .expect_err(text)
            .to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    std::fs::write(&file, "[flags]\naccuracy = 0.5\n").expect("write");
    assert!(Settings::load(Some(&file), &env(&[]), &Overrides::default()).is_err());
}

#[test]
fn a_previous_secrets_key_is_retired_beside_the_new_one() {
    let key = "q0vYQ1O0cO6cxm4dH6XyZk1b8m0b4pJj0u8bHc3fR1U=";
    let old = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let load = |vars: &[(&str, &str)]| {
        Settings::load(None, &env(vars), &Overrides::default())
            .expect("load")
            .0
    };
    let s = load(&[
        ("TAPIS_SECRETS_KEY", key),
        ("TAPIS_SECRETS_PREVIOUS_KEY", old),
    ]);
    assert!(!format!("{s:?}").contains("AAECAw"), "redacted");
    let sealed = s.secret_key().expect("keys");
    let old_kid = tapis_store::secrets::SecretKey::parse(old)
        .expect("old")
        .kid()
        .map(str::to_owned);
    assert_eq!(
        sealed.retired_kids(),
        vec![old_kid.as_deref().expect("kid")]
    );
    for (vars, says) in [
        (
            vec![("TAPIS_SECRETS_PREVIOUS_KEY", old)],
            "no secrets key is",
        ),
        (
            vec![
                ("TAPIS_SECRETS_KEY", key),
                ("TAPIS_SECRETS_PREVIOUS_KEY", "nope"),
            ],
            "TAPIS_SECRETS_PREVIOUS_KEY is not valid",
        ),
        (
            vec![
                ("TAPIS_SECRETS_KEY", key),
                ("TAPIS_SECRETS_PREVIOUS_KEY", key),
            ],
            "the secrets key itself",
        ),
    ] {
        let err = format!("{:#}", load(&vars).secret_key().expect_err(says));
        assert!(err.contains(says), "{err}");
    }
}
