//! The page shell (header, navigation by role, language switch, footer)
//! and the small pieces every page uses: times in the reader's zone with
//! the UTC instant in `title`, deadlines as time remaining, state badges.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use tapis_core::Timestamp;
use tapis_core::role::Role;

use crate::i18n::Lang;
use crate::session::{Ctx, url_encode};

/// A page for a request: the shell with navigation for the signed-in
/// role (or the public links).
pub fn page(cx: &Ctx, title: &str, body: Markup) -> Html<String> {
    let lang = cx.lang;
    let shell = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body {
                a.skip href="#main" { (lang.t("skip-to-content")) }
                header.top {
                    a.brand href="/" { "tapis" }
                    nav aria-label=(lang.t("nav-label")) {
                        ul {
                            @for (href, key) in nav_links(cx.session.as_ref().map(|s| s.principal.role)) {
                                li { a href=(href) { (lang.t(key)) } }
                            }
                        }
                    }
                    div.who {
                        @if let Some(s) = &cx.session {
                            a.person href="/account" title=(lang.t("account-title")) { (s.account.person.as_str()) " · " (s.account.party_name) " · " (lang.t(role_key(s.principal.role))) }
                            @if s.account.roles.len() > 1 {
                                form.inline method="post" action="/role" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    label for="role-switch" { (lang.t("role-switch")) }
                                    select id="role-switch" name="role" {
                                        @for r in &s.account.roles {
                                            option value=(r.as_str()) selected[*r == s.principal.role] { (lang.t(role_key(*r))) }
                                        }
                                    }
                                    button type="submit" { (lang.t("role-switch-go")) }
                                }
                            }
                            form.inline method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { (lang.t("nav-signout")) }
                            }
                        } @else {
                            a href="/signin" { (lang.t("nav-signin")) }
                        }
                        a.lang href={ "/lang?to=" (lang.other().code()) "&back=" (url_encode(&cx.here)) }
                          lang=(lang.other().code()) hreflang=(lang.other().code()) {
                            (lang.other().t("lang-name"))
                        }
                    }
                }
                main id="main" { (body) }
                (footer(lang, ""))
            }
        }
    };
    Html(shell.into_string())
}

/// A page without a request context (error pages).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Html<String> {
    bare_at(lang, title, body, "")
}

/// [`bare`] with its links starting at `base`: the block page is served
/// under a blocked name, where a relative link would ask that name again
/// (its stylesheet stays relative: `/assets/` is answered under any name).
pub fn bare_at(lang: Lang, title: &str, body: Markup, base: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                (head(title))
                body {
                    header.top { a.brand href={ (base) "/" } { "tapis" } }
                    main id="main" { (body) }
                    (footer(lang, base))
                }
            }
        }
        .into_string(),
    )
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · tapis" }
            link rel="stylesheet" href=(crate::assets::css_href());
        }
    }
}

fn footer(lang: Lang, base: &str) -> Markup {
    html! {
        footer.bottom {
            p {
                (lang.t("footer-text")) " · "
                a href={ (base) "/transparency" } { (lang.t("nav-transparency")) } " · "
                a href={ (base) "/register" } { (lang.t("nav-register")) } " · "
                a href={ (base) "/lookup" } { (lang.t("nav-lookup")) } " · "
                a href={ (base) "/api/v1/openapi.json" } { (lang.t("footer-api")) }
            }
        }
    }
}

/// The navigation for a role (or the public links when signed out). A new
/// role page adds its link here.
pub fn nav_links(role: Option<Role>) -> Vec<(&'static str, &'static str)> {
    let mut links = Vec::new();
    match role {
        None => {
            links.push(("/", "nav-home"));
            links.push(("/transparency", "nav-transparency"));
            links.push(("/register", "nav-register"));
            links.push(("/lookup", "nav-lookup"));
            links.push(("/appeal", "nav-appeal"));
            links.push(("/report", "nav-report"));
        }
        Some(r) => {
            if r.reads_everything() {
                links.push(("/dashboard", "nav-dashboard"));
            }
            if r == Role::Admin {
                links.push(("/admin", "nav-admin"));
            }
            if r == Role::PlatformAgent {
                links.push(("/inbox", "nav-inbox"));
                links.push(("/representative", "nav-representative"));
            }
            if r != Role::IspOperator && r != Role::Authoriser {
                links.push(("/notices", "nav-notices"));
            }
            if r == Role::Officer {
                links.push(("/notices/new", "nav-compose"));
            }
            if matches!(r, Role::Officer | Role::Approver) {
                links.push(("/approvals", "nav-approvals"));
            }
            if r.reads_everything() || r == Role::IspOperator || r == Role::Authoriser {
                links.push(("/orders", "nav-orders"));
            }
            if r == Role::Authoriser {
                links.push(("/authorise", "nav-authorise"));
            }
            if r == Role::IspOperator {
                links.push(("/isp", "nav-isp"));
            }
            if matches!(r, Role::Admin | Role::Auditor) {
                links.push(("/audit", "nav-audit"));
            }
            if r.may(tapis_core::role::Action::DecideAppeal) {
                links.push(("/appeals", "nav-appeals"));
            }
            if r == Role::Flagger {
                links.push(("/flags", "nav-flags"));
                links.push(("/flags/new", "nav-flag-new"));
            }
            if r.reads_everything() {
                links.push(("/flags/queue", "nav-flag-queue"));
            }
            if r.reads_everything() || r == Role::PlatformAgent || r == Role::Flagger {
                links.push(("/trusted-flaggers", "nav-trusted"));
            }
            links.push(("/transparency", "nav-transparency"));
        }
    }
    links
}

pub fn role_key(r: Role) -> &'static str {
    match r {
        Role::Admin => "role-admin",
        Role::Officer => "role-officer",
        Role::Approver => "role-approver",
        Role::Auditor => "role-auditor",
        Role::Flagger => "role-flagger",
        Role::PlatformAgent => "role-platform_agent",
        Role::IspOperator => "role-isp_operator",
        Role::Authoriser => "role-authoriser",
    }
}

/// A time in the reader's zone, the UTC instant in `title` and `datetime`.
pub fn time(cx: &Ctx, t: Timestamp) -> Markup {
    let utc = t.to_string();
    let cfg = &cx.state.config;
    html! {
        time datetime=(utc) title={ (utc) " (UTC)" } {
            (cx.lang.datetime(t, cfg.time_zone)) " " (cfg.zone_label)
        }
    }
}

pub fn maybe_time(cx: &Ctx, t: Option<Timestamp>) -> Markup {
    match t {
        Some(t) => time(cx, t),
        None => html! { span.muted { "—" } },
    }
}

/// A deadline as time remaining; overdue in red, saying so in words too.
pub fn deadline(cx: &Ctx, due: Option<Timestamp>, open: bool) -> Markup {
    let Some(due) = due else {
        return html! { span.muted { "—" } };
    };
    if !open {
        return time(cx, due);
    }
    let left = due.unix_millis() - cx.state.store.now().unix_millis();
    let utc = due.to_string();
    if left < 0 {
        html! { span.overdue title={ (utc) " (UTC)" } { (cx.tf("deadline-overdue", &[("d", &cx.lang.duration(left))])) } }
    } else {
        let class = if left < 3_600_000 { "soon" } else { "left" };
        html! { span class=(class) title={ (utc) " (UTC)" } { (cx.tf("deadline-left", &[("d", &cx.lang.duration(left))])) } }
    }
}

/// A state badge: the state's translated name, coloured by its kind.
pub fn badge(cx: &Ctx, state: &str) -> Markup {
    let tone = match state {
        "draft" => "grey",
        "submitted" | "delivered" | "scheduled" | "approved" | "open" => "blue",
        "acknowledged" | "in_force" | "removed" | "restricted" | "geo_blocked" => "green",
        "escalated" | "disputed" => "red",
        "closed" | "withdrawn" | "expired" | "lifted" | "decided" => "grey",
        _ => "amber",
    };
    html! { span class={ "badge " (tone) } { (state_name(cx.lang, state)) } }
}

/// A state's name in the reader's language (the code itself when the
/// catalogue has no entry for it: states are added in core over time).
pub fn state_name(lang: Lang, state: &str) -> String {
    let key = format!("state-{state}");
    let text = lang.t(&key);
    if text.starts_with('⟨') {
        state.replace('_', " ")
    } else {
        text.to_owned()
    }
}

/// A horizontal bar chart as inline SVG (no script): one bar per row,
/// labelled, with the value; `title` names it for assistive technology.
pub fn bar_chart(lang: Lang, title: &str, rows: &[(String, i64)]) -> Markup {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let row_h = 22;
    let height = (rows.len().max(1) * row_h + 4) as i64;
    html! {
        svg.chart role="img" aria-label=(title) viewBox={ "0 0 600 " (height) } width="100%" height=(height) {
            title { (title) }
            @for (i, (label, n)) in rows.iter().enumerate() {
                @let y = (i * row_h) as i64 + 2;
                @let w = (*n * 360 / max).max(if *n > 0 { 2 } else { 0 });
                text x="0" y=(y + 15) class="label" { (label) }
                rect x="200" y=(y + 3) width=(w) height="14" class="bar" {}
                text x=(206 + w) y=(y + 15) class="value" { (lang.number(*n)) }
            }
        }
    }
}

/// A time as an `<input type="datetime-local">` value in the configured
/// zone (`2026-03-04T10:00`).
pub fn local_input(cx: &Ctx, t: Timestamp) -> String {
    let offset = cx.state.config.time_zone;
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(t.unix_millis().div_euclid(1000)) else {
        return String::new();
    };
    let dt = dt.to_offset(offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute()
    )
}

/// A `datetime-local` (`YYYY-MM-DDTHH:MM[:SS]`) or `date` (`YYYY-MM-DD`,
/// the day's start) value read in the configured zone, as RFC 3339 text
/// for core's parsers; `None` when it has neither form.
pub fn from_local_input(cx: &Ctx, raw: &str) -> Option<String> {
    let raw = raw.trim();
    let shape = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T'))
    };
    if !shape(raw) {
        return None;
    }
    let full = match raw.len() {
        10 => format!("{raw}T00:00:00"),
        16 => format!("{raw}:00"),
        19 => raw.to_owned(),
        _ => return None,
    };
    let o = cx.state.config.time_zone;
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    Some(format!("{full}{sign}{:02}:{:02}", h.abs(), m.abs()))
}
