//! The tapis domain: parties, roles, notices and their items, the state
//! machines that govern them, the policies that give them deadlines, and the
//! audit chain's hashing rules.
//!
//! This crate does no I/O and knows no wire format: raw strings come in
//! through the `parse` constructors and leave as validated types. Time comes
//! from a [`Clock`] so that tests and scenario replays run on simulated time.
#![forbid(unsafe_code)]

pub mod appeal;
pub mod audit;
pub mod bank;
pub mod breaker;
pub mod canonical;
pub mod channel;
mod clock;
pub mod delivery;
pub mod dispute;
pub mod dsa;
pub mod due_process;
mod error;
pub mod escalation;
pub mod event;
pub mod flag;
mod id;
pub mod isp;
pub mod job;
pub mod ladder;
pub mod notice;
pub mod order;
pub mod party;
pub mod person;
pub mod policy;
pub mod pow;
pub mod public_suffix;
pub mod publication;
pub mod register;
pub mod representative;
pub mod retention;
pub mod role;
pub mod sign;
pub mod target;
pub mod taxonomy;
pub mod tlog;
pub mod totp;
pub mod trusted;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::{Error, Result};
pub use event::EventType;
pub use id::{
    AppealId, ClarificationId, DisputeId, EscalationId, FlagId, ItemId, NoticeId, OrderId, PartyId,
    TokenId,
};
