//! `tapis import` on excerpts of real lists (bundled with the test kit,
//! `crates/tapis-testkit/data/blocklists`): a third-party RPZ file and the
//! Indonesian gambling list become draft
//! orders with every name; bad lines are reported by number; a file with
//! nothing usable imports nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tapis_store::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

/// An excerpt of a real list, bundled with the test kit.
fn list(file: &str) -> PathBuf {
    tapis_testkit::data(&format!("blocklists/{file}"))
}

fn tapis(db: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--database-url", db])
        .args(args)
        .env_remove("TAPIS_CONFIG")
        .output()
        .expect("run tapis")
}

/// `tapis import WHAT FILE --category CATEGORY --legal-basis BASIS`, then
/// `extra`.
fn import(
    db: &str,
    what: &str,
    file: &Path,
    category: &str,
    basis: &str,
    extra: &[&str],
) -> Output {
    let file = file.to_str().expect("path");
    let mut args = vec!["import", what, file, "--category", category];
    args.extend(["--legal-basis", basis]);
    args.extend(extra);
    tapis(db, &args)
}

/// `tapis import domains FILE --category CATEGORY --legal-basis x`.
fn import_domains(db: &str, file: &Path, category: &str) -> Output {
    import(db, "domains", file, category, "x", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_real_lists_as_draft_orders() {
    let db = TestDb::new(tapis_store::Backend::Sqlite).await;
    let store = db.open(Arc::new(tapis_core::SystemClock)).await;
    store.bootstrap("Ministry", None).await.expect("boot");

    let rpz = list("hagezi-pro-mini.rpz");
    let basis = "Ministerial regulation 5/2020";
    let out = import(&db.url, "rpz", &rpz, "other", basis, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3976 entries accepted (1988 names), 0 duplicates, 0 rejected"),
        "{text}"
    );

    let gambling = list("gambling-indonesia.txt");
    let basis = "Law 11/2008 art. 27(2)";
    let subdomains = ["--include-subdomains"];
    let out = import(
        &db.url,
        "domains",
        &gambling,
        "gambling",
        basis,
        &subdomains,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let expected = std::fs::read_to_string(&gambling)
        .expect("read")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        text.contains(&format!("{expected} entries accepted")),
        "{text}"
    );

    let orders = store.list_orders(None, 10).await.expect("orders");
    assert_eq!(orders.len(), 2);
    assert!(
        orders
            .iter()
            .all(|o| o.state == tapis_core::order::OrderState::Draft),
        "imports are drafts"
    );
    let counts: Vec<i64> = orders.iter().map(|o| o.target_count).collect();
    assert!(
        counts.contains(&1_988) && counts.contains(&(expected as i64)),
        "{counts:?}"
    );
    assert_eq!(
        store.rpz_serial().await.expect("serial"),
        0,
        "nothing is blocked before approval"
    );

    // bad lines are reported with their numbers; nothing usable imports nothing
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "good.example\nnot a name at all\n-bad-.example\n").expect("write");
    let out = import_domains(&db.url, &bad, "gambling");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 entries accepted") && text.contains("2 rejected"),
        "{text}"
    );
    assert!(
        text.contains("line 2:") && text.contains("line 3:"),
        "{text}"
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nothing\n\nnot-a-domain\n").expect("write");
    let out = import_domains(&db.url, &empty, "gambling");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = import_domains(&db.url, Path::new("/nonexistent/list.txt"), "gambling");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    let out = import_domains(&db.url, &empty, "jaywalking");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        store.list_orders(None, 10).await.expect("orders").len(),
        3,
        "only the good list added an order"
    );
    store.close().await;
    db.cleanup().await;
}
