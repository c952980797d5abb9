//! Orders affecting a platform, in its inbox: the orders whose blast
//! radius touches the platform's names, which tapis sent it for a
//! response before they take effect (`Store::orders_affecting`, the
//! orders `Store::order_affects` lets it read). Each links to the order's
//! page, where the platform answers (`Store::respond_to_order`, as
//! `POST /api/v1/orders/{id}/responses`).

use maud::{Markup, html};
use tapis_core::party::PartyKind;
use tapis_core::role::Action;
use tapis_store::Session;

use crate::error::WebError;
use crate::session::Ctx;

const LIMIT: u32 = 100;

/// The inbox's section, or nothing for a role that cannot read orders.
pub(crate) async fn section(cx: &Ctx, s: &Session) -> Result<Markup, WebError> {
    let p = &s.principal;
    if p.party_kind != PartyKind::Platform || !p.role.may(Action::ReadOrders) {
        return Ok(html! {});
    }
    let orders = cx
        .state
        .store
        .orders_affecting(p.party_id, LIMIT)
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    Ok(html! {
        section id="platform-orders" aria-labelledby="h-platform-orders" {
            h2 id="h-platform-orders" { (cx.t("platform-orders-title")) }
            p { (cx.t("platform-orders-lead")) }
            (super::orders::table(cx, &orders, None))
        }
    })
}
