//! The schema's migrations, in ascending order: one SQL file per dialect
//! each (`migrations/sqlite`, `migrations/postgres`), applied by
//! [`Store::open`](crate::Store::open) and checked by checksum.

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

/// Migrations in order. Never edit one that has landed: add a new one. Each
/// is recorded with a checksum, and a changed file is refused at start-up.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "channel",
        sqlite: include_str!("../../migrations/sqlite/0002_channel.sql"),
        postgres: include_str!("../../migrations/postgres/0002_channel.sql"),
    },
    Migration {
        version: 3,
        name: "runtime_state",
        sqlite: include_str!("../../migrations/sqlite/0003_runtime_state.sql"),
        postgres: include_str!("../../migrations/postgres/0003_runtime_state.sql"),
    },
    Migration {
        version: 4,
        name: "orders",
        sqlite: include_str!("../../migrations/sqlite/0004_orders.sql"),
        postgres: include_str!("../../migrations/postgres/0004_orders.sql"),
    },
    Migration {
        version: 5,
        name: "isp",
        sqlite: include_str!("../../migrations/sqlite/0005_isp.sql"),
        postgres: include_str!("../../migrations/postgres/0005_isp.sql"),
    },
    Migration {
        version: 6,
        name: "probes",
        sqlite: include_str!("../../migrations/sqlite/0006_probes.sql"),
        postgres: include_str!("../../migrations/postgres/0006_probes.sql"),
    },
    Migration {
        version: 7,
        name: "zone_sync",
        sqlite: include_str!("../../migrations/sqlite/0007_zone_sync.sql"),
        postgres: include_str!("../../migrations/postgres/0007_zone_sync.sql"),
    },
    Migration {
        version: 8,
        name: "explanations",
        sqlite: include_str!("../../migrations/sqlite/0008_explanations.sql"),
        postgres: include_str!("../../migrations/postgres/0008_explanations.sql"),
    },
    Migration {
        version: 9,
        name: "due_process",
        sqlite: include_str!("../../migrations/sqlite/0009_due_process.sql"),
        postgres: include_str!("../../migrations/postgres/0009_due_process.sql"),
    },
    Migration {
        version: 10,
        name: "one_scheduler",
        sqlite: include_str!("../../migrations/sqlite/0010_one_scheduler.sql"),
        postgres: include_str!("../../migrations/postgres/0010_one_scheduler.sql"),
    },
    Migration {
        version: 11,
        name: "separation_of_powers",
        sqlite: include_str!("../../migrations/sqlite/0011_separation_of_powers.sql"),
        postgres: include_str!("../../migrations/postgres/0011_separation_of_powers.sql"),
    },
    Migration {
        version: 12,
        name: "ownership_lease",
        sqlite: include_str!("../../migrations/sqlite/0012_ownership_lease.sql"),
        postgres: include_str!("../../migrations/postgres/0012_ownership_lease.sql"),
    },
    Migration {
        version: 15,
        name: "token_lifetimes",
        sqlite: include_str!("../../migrations/sqlite/0015_token_lifetimes.sql"),
        postgres: include_str!("../../migrations/postgres/0015_token_lifetimes.sql"),
    },
    Migration {
        version: 16,
        name: "accounts",
        sqlite: include_str!("../../migrations/sqlite/0016_accounts.sql"),
        postgres: include_str!("../../migrations/postgres/0016_accounts.sql"),
    },
    Migration {
        version: 18,
        name: "transparency_log",
        sqlite: include_str!("../../migrations/sqlite/0018_transparency_log.sql"),
        postgres: include_str!("../../migrations/postgres/0018_transparency_log.sql"),
    },
    Migration {
        version: 19,
        name: "appeals",
        sqlite: include_str!("../../migrations/sqlite/0019_appeals.sql"),
        postgres: include_str!("../../migrations/postgres/0019_appeals.sql"),
    },
    Migration {
        version: 20,
        name: "flags",
        sqlite: include_str!("../../migrations/sqlite/0020_flags.sql"),
        postgres: include_str!("../../migrations/postgres/0020_flags.sql"),
    },
    Migration {
        version: 21,
        name: "two_step",
        sqlite: include_str!("../../migrations/sqlite/0021_two_step.sql"),
        postgres: include_str!("../../migrations/postgres/0021_two_step.sql"),
    },
    Migration {
        version: 22,
        name: "tsig_rotation",
        sqlite: include_str!("../../migrations/sqlite/0022_tsig_rotation.sql"),
        postgres: include_str!("../../migrations/postgres/0022_tsig_rotation.sql"),
    },
    Migration {
        version: 24,
        name: "zone_digests",
        sqlite: include_str!("../../migrations/sqlite/0024_zone_digests.sql"),
        postgres: include_str!("../../migrations/postgres/0024_zone_digests.sql"),
    },
    Migration {
        version: 25,
        name: "representatives",
        sqlite: include_str!("../../migrations/sqlite/0025_representatives.sql"),
        postgres: include_str!("../../migrations/postgres/0025_representatives.sql"),
    },
    Migration {
        version: 27,
        name: "signal_banks",
        sqlite: include_str!("../../migrations/sqlite/0027_signal_banks.sql"),
        postgres: include_str!("../../migrations/postgres/0027_signal_banks.sql"),
    },
    Migration {
        version: 28,
        name: "spent_challenges",
        sqlite: include_str!("../../migrations/sqlite/0028_spent_challenges.sql"),
        postgres: include_str!("../../migrations/postgres/0028_spent_challenges.sql"),
    },
    Migration {
        version: 29,
        name: "retention",
        sqlite: include_str!("../../migrations/sqlite/0029_retention.sql"),
        postgres: include_str!("../../migrations/postgres/0029_retention.sql"),
    },
    Migration {
        version: 31,
        name: "match_feedback_once",
        sqlite: include_str!("../../migrations/sqlite/0031_match_feedback_once.sql"),
        postgres: include_str!("../../migrations/postgres/0031_match_feedback_once.sql"),
    },
];
