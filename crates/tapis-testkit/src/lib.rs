//! The test kit: one way for integration tests to start the real `tapis`
//! binary on free ports, to run the Debian tools they drive (BIND, Unbound,
//! PowerDNS Recursor, Knot Resolver, Chromium, dig) and to wait for a fact
//! instead of sleeping for a guessed time.
//!
//! Dev-only (`publish = false`) and independent of the tapis crates, so any
//! crate's tests can use it without a dependency cycle:
//!
//! - [`free_port`], [`Proc`] (a child killed on drop), [`tool`] (a
//!   program's path, or a panic naming the Debian package to install);
//! - [`wait_until`] and [`wait_until_async`]: poll a condition until it
//!   holds or a deadline passes, then fail saying what was awaited and what
//!   was last seen. A negative assertion ("nothing fired twice") is made
//!   only after waiting for a fact that proves the system is quiet (see
//!   [`Server::wait_quiet`]);
//! - [`Server`]: `tapis serve` in a temporary data directory, on a
//!   simulated clock, with its HTTP API at [`Server::base`] and its RPZ
//!   primary at [`Server::dns_port`];
//! - [`Api`]: a JSON client for the tapis API (also used by in-process
//!   tests that serve the router themselves);
//! - [`dns`]: what `dig` says about a name;
//! - [`data`]: excerpts of real blocklists for the tests.
//!
//! The binary's path comes from the calling test
//! (`env!("CARGO_BIN_EXE_tapis")` exists only in the `tapis` crate's
//! tests), so the kit never builds tapis itself.
#![forbid(unsafe_code)]
// A test kit: failing loudly is its job.
#![allow(clippy::unwrap_used)]

mod api;
pub mod dns;
mod process;
mod server;
mod wait;

pub use api::Api;
pub use process::{Proc, debian_package, free_port, tool};
pub use server::{ADMIN, Server, ServerBuilder};
pub use wait::{Outcome, POLL, wait_until, wait_until_async};

/// A file of the kit's test data (`crates/tapis-testkit/data/`: excerpts
/// of real blocklists, with their sources and licences in the README
/// beside them). Panics if it is missing.
pub fn data(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    assert!(p.exists(), "{} is missing from the repository", p.display());
    p
}
