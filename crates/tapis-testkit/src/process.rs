//! Child processes, free ports and the Debian tools the tests drive.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process, killed (SIGKILL) and reaped when dropped, so a failing
/// test never leaves a server behind.
pub struct Proc(pub Child);

impl Proc {
    /// Starts `cmd` with its stdout piped and reads lines until `found`
    /// returns something for one; the rest of stdout is drained in the
    /// background (a full pipe would stall the child). Panics, naming
    /// `what`, if the child cannot start or closes stdout first.
    pub fn spawn_reading<T>(
        cmd: &mut Command,
        what: &str,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> (Proc, T) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let proc = Proc(child);
        let mut lines = BufReader::new(stdout).lines();
        let value = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(v) = found(&line) {
                        break v;
                    }
                }
                Some(Err(e)) => panic!("{what}: cannot read its output: {e}"),
                None => panic!("{what} closed its output before saying it was ready"),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (proc, value)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Panics, naming `what` and adding `context`, if the child has exited.
    pub fn assert_running(&mut self, what: &str, context: impl FnOnce() -> String) {
        if let Ok(Some(exit)) = self.0.try_wait() {
            panic!("{what} exited ({exit}):\n{}", context());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // std's kill is SIGKILL on Unix: no graceful anything
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (DNS servers need both).
pub fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = t.local_addr().expect("local address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The Debian package that ships `program` (for the message of [`tool`]).
pub fn debian_package(program: &str) -> &'static str {
    match program {
        "named" => "bind9",
        "named-checkconf" | "named-checkzone" | "rndc" | "tsig-keygen" => "bind9-utils",
        "dig" | "nsupdate" | "delv" => "bind9-dnsutils",
        "pdns_recursor" | "rec_control" => "pdns-recursor",
        "unbound" | "unbound-control" | "unbound-checkconf" => "unbound",
        "kresd" => "knot-resolver",
        "kdig" => "knot-dnsutils",
        "chromium" => "chromium",
        "python3" => "python3",
        "psql" | "pg_ctlcluster" | "pg_isready" => "postgresql",
        _ => "(unknown: see scripts/setup)",
    }
}

/// The path of an installed program. Fails (never skips) when it is
/// missing, naming the Debian package that ships it: a test that could
/// silently skip is a test that could not fail.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: it is in the Debian package {}, which scripts/setup installs",
        debian_package(name)
    );
}
