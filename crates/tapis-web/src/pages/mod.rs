//! One module per page or group of pages. A page handler takes a
//! [`crate::session::Ctx`], asks the store (through the same methods and
//! role checks as the API), and returns [`crate::layout::page`].

pub mod account;
pub mod admin;
pub mod appeal;
pub mod approvals;
pub mod audit;
pub mod authorise;
pub mod block;
pub mod dashboard;
pub mod evidence;
pub mod flags;
pub mod flags_review;
pub mod inbox;
pub mod isp;
pub mod notices;
pub mod orders;
pub mod platform_orders;
pub mod public;
pub mod record;
pub mod register;
pub mod representative;
pub mod signin;
pub mod table;
pub mod transparency;

use axum::body::Bytes;

use crate::error::WebError;
use crate::session::{Ctx, Form, check_csrf};

/// A POSTed form, its CSRF token checked.
pub fn checked_form(cx: &Ctx, body: &Bytes) -> Result<Form, WebError> {
    let form = Form::parse(body);
    check_csrf(cx, &form)?;
    Ok(form)
}
