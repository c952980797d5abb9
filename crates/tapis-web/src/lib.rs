//! The web interface: server-rendered pages for people, beside the JSON
//! API that machines use.
//!
//! `tapis serve` mounts [`router`] behind the API (`/api/v1/...` keeps
//! answering as before; everything else comes here). Pages are rendered
//! with maud (compile-time templates that escape every interpolated value),
//! in English or Bahasa Indonesia from the translation files in `i18n/`,
//! with one embedded stylesheet and no script at all, so the Content
//! Security Policy can forbid scripts outright.
//!
//! A signed-in person is a [`tapis_store::Principal`] exactly like a token
//! holder ([`session`]), so every page goes through the same store methods
//! and role checks as the API; nothing here decides who may do what. Every
//! form carries a CSRF token ([`session::check_csrf`]). Errors are HTML
//! pages ([`error::WebError`]), never JSON.
//!
//! Adding a page: a module under `pages/`, its routes in [`router`], its
//! strings in both `i18n/*.ftl` files, and a link in
//! [`layout::nav_links`] for the roles that use it (ARCHITECTURE.md says
//! more).
#![forbid(unsafe_code)]

pub mod assets;
pub mod error;
pub mod i18n;
pub mod layout;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tapis_core::notice::Limits as NoticeLimits;
use tapis_core::taxonomy::Taxonomy;
use tapis_store::{SessionPolicy, Store};
use time::UtcOffset;

pub use pages::block::{BlockPageRenderer, render_block_page};

/// The web interface's settings (`[web]` in the configuration).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The zone times are shown in (the authority's by default).
    pub time_zone: UtcOffset,
    /// Its short name shown beside times, e.g. `WIB`.
    pub zone_label: String,
    /// Mark cookies `Secure` (and use the `__Host-` prefix): on when the
    /// public URL is https.
    pub secure_cookies: bool,
    pub session: SessionPolicy,
    /// Failed sign-ins from one address within 15 minutes before it is
    /// refused for the rest of the window (kept in memory only: client
    /// addresses are never stored).
    pub failures_per_address: u32,
    /// `tapis serve --demo`: the landing page says so.
    pub demo: bool,
    /// Where people reach this tapis (`channel.public_url`): invitation
    /// links are made from it.
    pub public_url: String,
    /// The most the composer's evidence files may weigh together (each is
    /// hashed as it streams in and not kept); `web.evidence_max_bytes`.
    pub evidence_max_bytes: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            time_zone: UtcOffset::from_hms(7, 0, 0).expect("+07:00 is a valid offset"),
            zone_label: "WIB".into(),
            secure_cookies: false,
            session: SessionPolicy::default(),
            failures_per_address: 20,
            demo: false,
            public_url: "http://127.0.0.1:8080".into(),
            evidence_max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// What every page shares.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub taxonomy: Arc<Taxonomy>,
    pub notice_limits: NoticeLimits,
    pub config: Arc<WebConfig>,
    pub throttle: Arc<session::Throttle>,
    /// Public appeals per address (in memory only, like `throttle`).
    pub appeal_throttle: Arc<session::Throttle>,
    /// Public reports (the web form) per address, apart from appeals.
    pub flag_throttle: Arc<session::Throttle>,
    /// When a flagger's accuracy calls its status into review (`[flags]`).
    pub accuracy: tapis_core::flag::AccuracyPolicy,
    /// What the public register withholds (`[register]`).
    pub register: Arc<tapis_core::register::RedactionPolicy>,
}

impl WebState {
    pub fn new(store: Store, config: WebConfig) -> Self {
        WebState {
            store,
            taxonomy: Arc::new(Taxonomy::bundled()),
            notice_limits: NoticeLimits::default(),
            config: Arc::new(config),
            throttle: Arc::new(session::Throttle::default()),
            appeal_throttle: Arc::new(session::Throttle::default()),
            flag_throttle: Arc::new(session::Throttle::default()),
            accuracy: Default::default(),
            register: Default::default(),
        }
    }
}

/// Every browser route. Mounted by `tapis serve` behind the API.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::public::landing))
        .route("/lookup", get(pages::public::lookup))
        .route("/lang", get(pages::public::switch_language))
        .route("/transparency", get(pages::transparency::show))
        .route("/register", get(pages::register::search))
        .route("/register/orders/{id}", get(pages::register::order))
        .route("/register/notices/{id}", get(pages::register::notice))
        .route("/assets/app.css", get(assets::css))
        .route("/favicon.ico", get(assets::favicon))
        .route(
            "/signin",
            get(pages::signin::form).post(pages::signin::submit),
        )
        .route("/signout", post(pages::signin::sign_out))
        .route("/role", post(pages::signin::switch_role))
        .route(
            "/invitations/{code}",
            get(pages::signin::invitation_form).post(pages::signin::invitation_submit),
        )
        .route(
            "/reset/{code}",
            get(pages::signin::reset_form).post(pages::signin::reset_submit),
        )
        .route("/admin", get(pages::admin::show))
        .route("/admin/parties", post(pages::admin::create_party))
        .route(
            "/admin/parties/{id}/invitations",
            post(pages::admin::invite_to_party),
        )
        .route("/account", get(pages::account::show))
        .route("/account/invite", post(pages::account::invite_colleague))
        .route("/account/two-step/start", post(pages::account::start))
        .route("/account/two-step/confirm", post(pages::account::confirm))
        .route("/account/two-step/disable", post(pages::account::disable))
        .route("/dashboard", get(pages::dashboard::show))
        .route("/notices", get(pages::notices::list))
        .route(
            "/notices/new",
            get(pages::notices::compose)
                .post(pages::notices::submit)
                // evidence files: their own bound; every other form keeps
                // the API's
                .layer(axum::extract::DefaultBodyLimit::max(
                    pages::evidence::body_limit(state.config.evidence_max_bytes),
                )),
        )
        .route("/notices/{id}", get(pages::notices::detail))
        .route("/inbox", get(pages::inbox::show))
        .route("/notices/{id}/acknowledge", post(pages::inbox::acknowledge))
        .route(
            "/notices/{id}/items/{item_id}/decision",
            post(pages::inbox::decide),
        )
        .route("/approvals", get(pages::approvals::show))
        .route("/escalations/{id}", get(pages::approvals::escalation))
        .route("/escalations/{id}/decision", post(pages::approvals::decide))
        .route(
            "/escalations/{id}/draft-order",
            post(pages::approvals::draft),
        )
        .route("/orders", get(pages::orders::list))
        .route("/orders/{id}", get(pages::orders::detail))
        .route("/orders/{id}/approve", post(pages::orders::approve))
        .route("/orders/{id}/lift", post(pages::orders::lift))
        .route("/orders/{id}/responses", post(pages::orders::respond))
        .route("/authorise", get(pages::authorise::desk))
        .route(
            "/authorise/{id}",
            get(pages::authorise::sign_page).post(pages::authorise::submit),
        )
        .route("/isp", get(pages::isp::show))
        .route("/isp/acknowledge", post(pages::isp::acknowledge))
        .route("/isp/tsig-key/rotate", post(pages::isp::rotate_key))
        .route("/isp/tsig-key/retire", post(pages::isp::retire_key))
        .route("/audit", get(pages::audit::show))
        .route(
            "/appeal",
            get(pages::appeal::form).post(pages::appeal::submit),
        )
        .route("/appeal/{reference}", get(pages::appeal::status))
        .route("/appeals", get(pages::appeal::queue))
        .route("/appeals/{id}/review", post(pages::appeal::start_review))
        .route("/appeals/{id}/decision", post(pages::appeal::decide))
        .route(
            "/notices/{id}/items/{item_id}/clarification",
            post(pages::appeal::clarify),
        )
        .route(
            "/notices/{id}/items/{item_id}/dispute",
            post(pages::appeal::dispute),
        )
        .route(
            "/clarifications/{id}/answer",
            post(pages::appeal::answer_clarification),
        )
        .route("/disputes/{id}/review", post(pages::appeal::review_dispute))
        .route("/representative", get(pages::representative::show))
        .route("/representative/{role}", post(pages::representative::save))
        .route(
            "/representative/{role}/code",
            post(pages::representative::send_code),
        )
        .route(
            "/representative/{role}/verify",
            post(pages::representative::verify),
        )
        .route(
            "/report",
            get(pages::flags::report).post(pages::flags::submit_report),
        )
        .route("/report/status", get(pages::flags::find_report))
        .route("/report/{reference}", get(pages::flags::report_status))
        .route("/flags", get(pages::flags::mine))
        .route(
            "/flags/new",
            get(pages::flags::new_flag).post(pages::flags::submit_flag),
        )
        .route("/flags/queue", get(pages::flags_review::queue))
        .route("/flags/queue/accept", post(pages::flags_review::accept))
        .route("/flags/queue/merge", post(pages::flags_review::merge))
        .route("/flags/queue/reject", post(pages::flags_review::reject))
        .route(
            "/trusted-flaggers",
            get(pages::flags_review::grants).post(pages::flags_review::grant),
        )
        .route(
            "/trusted-flaggers/{id}/confirm",
            post(pages::flags_review::confirm),
        )
        .route(
            "/trusted-flaggers/{id}/status",
            post(pages::flags_review::change),
        )
        .route(
            "/flaggers/{id}/report",
            get(pages::flags_review::flagger_report),
        )
        .route("/issuers/report", get(pages::flags_review::issuer_report))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::with_navigation,
        ))
        .layer(axum::middleware::from_fn(assets::security_headers))
        .with_state(state)
}
