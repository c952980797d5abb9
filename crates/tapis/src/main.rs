//! The `tapis` command: configuration, telemetry and wiring. Logic lives in
//! the library crates; this file only connects them.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod delivery_metrics;
mod demo;
mod dns;
mod match_cmd;
mod replay;
mod resolver_cmd;
mod server;
mod telemetry;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
