//! The first admin token's file does its job once: the real binary writes
//! it at the first start (owner-only), and removes it as soon as the token
//! has authenticated a request, so a later reader of the disk or a copy of
//! the data directory holds no working admin credential. The token itself
//! keeps working, and a restart writes no new file.

use std::time::Duration;

use tapis_testkit::{Api, Proc, Server, free_port, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_tapis");

fn start(dir: &std::path::Path) -> (Proc, Api) {
    let mut cmd = Server::builder(BIN).command(dir, free_port());
    // no TAPIS_BOOTSTRAP_TOKEN: the first start writes DATA_DIR/admin-token
    cmd.env_remove("TAPIS_BOOTSTRAP_TOKEN");
    let (proc, base) = Proc::spawn_reading(&mut cmd, "tapis serve", |line| {
        line.strip_prefix("tapis listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    });
    (proc, Api::new(base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_token_file_is_removed_once_used() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let file = data.join("admin-token");

    let (server, api) = start(&data);
    let admin = std::fs::read_to_string(&file)
        .expect("the first start writes the admin token")
        .trim()
        .to_owned();
    let (s, me) = api.get("/api/v1/whoami", &admin).await;
    assert_eq!(s.as_u16(), 200, "{me}");
    assert_eq!(me["role"], "admin", "{me}");

    wait_until(
        Duration::from_secs(15),
        "the admin-token file to be removed after the token's first use",
        || !file.exists(),
    );
    // the credential still works; only the copy on disk is gone
    let (s, me) = api.get("/api/v1/whoami", &admin).await;
    assert_eq!(s.as_u16(), 200, "{me}");
    drop(server);

    // a restart bootstraps nothing and writes no new file
    let (_server, api) = start(&data);
    let (s, me) = api.get("/api/v1/whoami", &admin).await;
    assert_eq!(s.as_u16(), 200, "{me}");
    assert!(
        !file.exists(),
        "a restart must not write the admin token again"
    );
}
