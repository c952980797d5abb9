//! Persistence for tapis: one [`Store`] over SQLite (the embedded default)
//! or PostgreSQL (for scale), chosen by the database URL.
//!
//! Every method that changes state runs in one write transaction that also
//! appends the audit event(s) describing the change, so a change without its
//! event (or an event without its change) cannot be committed. Business rules
//! (what may change, and into what) come from `tapis-core`; this crate only
//! applies them and records the result.
#![forbid(unsafe_code)]

mod accounts;
mod appeals;
mod audit;
mod audit_batch;
mod authorisers;
pub mod banks;
mod channel;
mod db;
mod disputes;
mod due_process;
mod error;
mod flags;
pub mod grants;
mod group_commit;
mod invitations;
mod isp;
mod jobs;
pub mod lease;
pub mod liveness;
pub mod metrics;
mod model;
mod notices;
mod orders;
mod parties;
pub mod register;
mod representatives;
mod retention;
mod schedule;
pub mod secrets;
mod shared_clock;
pub mod spent_challenges;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tlog;
mod tlog_check;
mod tokens;
mod trusted;
mod two_step;

pub use accounts::{
    AccountInfo, LINK_LIFETIME_MS, MAX_FAILED_SIGNINS, Session, SessionPolicy, SignIn,
    check_password, hash_password, lockout_for, parse_login,
};
pub use appeals::{Appeal, LiftedAfterAppeal, PublicAppeal};
pub use audit::{AuditQuery, VerifyReport};
pub use authorisers::{AuthoriserKey, fingerprint};
pub use channel::*;
pub use db::{AUDIT_CHAIN_LOCK, Backend, Options, RetryPolicy, Store, Timeouts, redact_url};
pub use disputes::{Clarification, Dispute};
pub use due_process::{AuthorisationView, DueProcess, PublicationView, ResponseView};
pub use error::{Error, Result, Unavailability};
pub use flags::{
    FlagTargetView, FlagView, FlaggerReport, IssuerFigures, PublicFlagStatus, QueueEntry,
    QueueHealth, QueueSource, ReviewerLoad, WindowFigures,
};
pub use group_commit::{Backlog, MAX_BATCH, Stats as GroupCommitStats};
pub use invitations::{INVITATION_LIFETIME_MS, InvitationInfo};
pub use isp::*;
pub use jobs::{Fired, JobsFired};
pub use lease::{Fence, Lease, LeaseConfig, LeaseRow, Ownership};
pub use model::*;
pub use notices::acknowledgement_statement;
pub use orders::*;
pub use parties::Bootstrapped;
pub use representatives::{EmailRoute, PlatformContact, UnrepresentedPlatform};
pub use retention::RetentionRun;
pub use schedule::DueWork;
pub use shared_clock::SIMULATED_NOW;
pub use stats::{DashboardCounts, PlatformFigures, Transparency, quantile};
pub use tlog_check::LogRecompute;
pub use tokens::{hash_secret, new_secret};
pub use trusted::TrustedGrant;
