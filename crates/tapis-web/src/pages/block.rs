//! The block page and the lookup's answer, in both languages: which order
//! blocks a name, why, since when, until when, and how to ask for a
//! review. `tapis serve` hands [`render_block_page`] to the API's block
//! page (`/block?name=` and requests whose Host is a blocked name), so
//! there is one explanation wherever a person meets a block.

use std::sync::Arc;

use axum::http::HeaderMap;
use maud::{Markup, html};
use tapis_store::Lookup;

use crate::WebConfig;
use crate::i18n::Lang;
use crate::layout::bare_at;

/// What a lookup found, explained. Links start with `base`: empty on
/// tapis's own pages, tapis's public URL on the block page, which is
/// served under the blocked name itself (a relative link there would ask
/// the blocked name again and get the block page back).
pub fn explain(lang: Lang, cfg: &WebConfig, l: &Lookup, base: &str) -> Markup {
    let when = |t| {
        let t: tapis_core::Timestamp = t;
        let utc = t.to_string();
        html! { time datetime=(utc) title={ (utc) " (UTC)" } { (lang.datetime(t, cfg.time_zone)) " " (cfg.zone_label) } }
    };
    match (&l.order, l.blocked) {
        (Some(o), true) => html! {
            p.lead { (lang.tf("block-is-blocked", &[("name", &l.name)])) }
            dl.facts {
                dt { (lang.t("block-order")) } dd { code { (o.id) } }
                dt { (lang.t("block-category")) } dd { (o.category.replace('_', " ")) }
                dt { (lang.t("block-legal-basis")) } dd { (o.legal_basis.reference) br; small { (o.legal_basis.text) } }
                dt { (lang.t("block-since")) } dd { @if let Some(t) = o.in_force_since { (when(t)) } @else { "—" } }
                dt { (lang.t("block-expires")) } dd { (when(o.expires_at)) }
            }
            h2 { (lang.t("block-wrong-title")) }
            p { (lang.t("block-wrong-text")) }
            p {
                a href={ (base) "/appeal?order=" (crate::session::url_encode(&o.id)) "&name=" (crate::session::url_encode(&l.name)) } { strong { (lang.t("block-appeal")) } }
            }
            p {
                a href={ (base) "/lookup?name=" (crate::session::url_encode(&l.name)) } { (lang.t("nav-lookup")) }
                " · " (lang.t("block-api")) " " code { "/api/v1/lookup?name=" (l.name) }
            }
        },
        _ => html! {
            p.lead { (lang.tf("block-not-blocked", &[("name", &l.name)])) }
            @if let Some(a) = &l.lifted_after_appeal {
                p {
                    (lang.tf("block-lifted-after-appeal", &[("order", &a.order_id), ("reference", a.reference.as_str())]))
                    " " (when(a.lifted_at)) " · "
                    a href={ (base) "/appeal/" (a.reference.as_str()) } { (lang.t("block-appeal-decision")) }
                }
            }
        },
    }
}

pub fn explanation(cx: &crate::session::Ctx, l: &Lookup) -> Markup {
    html! {
        section aria-live="polite" {
            (explain(cx.lang, &cx.state.config, l, ""))
            p.muted { small { (cx.tf("block-serial", &[("serial", &l.serial.to_string())])) } }
        }
    }
}

/// What the API's block page calls to render (the same type as
/// `tapis_http::BlockPageRenderer`).
pub type BlockPageRenderer = Arc<dyn Fn(&Lookup, &HeaderMap) -> String + Send + Sync>;

/// The block page renderer `tapis serve` gives the API: the language from
/// the `lang` cookie or `Accept-Language`, times in the configured zone.
pub fn render_block_page(config: Arc<WebConfig>) -> BlockPageRenderer {
    Arc::new(move |l: &Lookup, headers: &HeaderMap| {
        let lang = Lang::choose(headers);
        let base = config.public_url.trim_end_matches('/');
        let title = if l.blocked {
            lang.t("block-title-blocked")
        } else {
            lang.t("block-title-not")
        };
        let body = html! {
            h1 { (title) }
            (explain(lang, &config, l, base))
            p.muted { small { (lang.tf("block-serial", &[("serial", &l.serial.to_string())])) } }
            p { a href={ (base) "/transparency" } { (lang.t("nav-transparency")) } " · " a href={ (base) "/lookup" } { (lang.t("nav-lookup")) } " · " a href={ (base) "/report" } { (lang.t("nav-report")) } }
        };
        bare_at(lang, title, body, base).0
    })
}
