//! The web interface's settings: the time zone pages show, session
//! lifetimes, cookies and sign-in throttling.

use serde::Deserialize;

/// The web interface for people.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSettings {
    /// The zone pages show times in, as an offset from UTC (`+07:00`);
    /// the UTC instant is always in the time's tooltip.
    pub time_zone: String,
    /// The zone's short name shown beside times.
    pub zone_label: String,
    /// A signed-in session unused this long ends.
    pub session_idle_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    pub session_max_hours: u32,
    /// Mark cookies `Secure`; unset: on when `channel.public_url` is https.
    pub secure_cookies: Option<bool>,
    /// Failed sign-ins from one address in 15 minutes before it must wait.
    pub failures_per_address: u32,
    /// The most the evidence files uploaded with one notice may weigh
    /// together, in bytes (1 KiB to 1 GiB; 32 MiB by default). Each is
    /// hashed as it arrives and not kept; every other form keeps
    /// `limits.max_body_bytes`.
    pub evidence_max_bytes: u64,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            time_zone: "+07:00".into(),
            zone_label: "WIB".into(),
            session_idle_minutes: 30,
            session_max_hours: 12,
            secure_cookies: None,
            failures_per_address: 20,
            evidence_max_bytes: 32 * 1024 * 1024,
        }
    }
}

impl WebSettings {
    /// The offset `time_zone` names.
    pub fn offset(&self) -> anyhow::Result<time::UtcOffset> {
        let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        time::UtcOffset::parse(self.time_zone.trim(), &fmt).map_err(|_| {
            anyhow::anyhow!(
                "web.time_zone must be an offset like +07:00, not {:?}",
                self.time_zone
            )
        })
    }
}
