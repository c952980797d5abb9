//! Notices: the list (filters, sort and page in the URL, newest first
//! unless sorted), one notice with its items, and the composer.
//!
//! Scoping is the API's: the authority's roles read every notice, a
//! platform's people only those addressed to their platform (never
//! drafts), anyone else only their own party's. Another party's notice is
//! a 404 page, never a 403, so ids cannot be probed. The composer submits
//! through `Store::create_notice`, the API's own method, with an
//! idempotency key per rendered form: a double submit makes one notice.
//! The composer is a multipart form: evidence files are hashed as they
//! arrive and not kept (`super::evidence`).

use axum::extract::{FromRequest, Multipart, Path, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use sha2::{Digest, Sha256};
use tapis_core::notice::{
    EvidenceInput, ItemInput, LegalBasisInput, NewNotice, NoticeInput, NoticeState,
};
use tapis_core::party::PartyKind;
use tapis_core::role::{Action, Role};
use tapis_core::{NoticeId, PartyId};
use tapis_store::{NOTICE_SORTS, Notice, NoticeFilter, Session};

use super::table::ListState;
use crate::error::WebError;
use crate::layout::{badge, deadline, maybe_time, page, time};
use crate::session::{Ctx, Form, query, random_token};

const PAGE: u32 = 50;
const ITEM_ROWS: usize = 5;
const ITEM_KINDS: [&str; 5] = [
    "url",
    "domain",
    "platform_account",
    "platform_channel",
    "content_hash",
];

pub(crate) fn is_open(state: NoticeState) -> bool {
    matches!(
        state,
        NoticeState::Submitted
            | NoticeState::Delivered
            | NoticeState::Acknowledged
            | NoticeState::Escalated
            | NoticeState::Disputed
    )
}

pub(crate) fn may(cx: &Ctx, s: &Session, action: Action) -> Result<(), WebError> {
    if s.principal.role.may(action) {
        Ok(())
    } else {
        Err(WebError::forbidden(cx.lang))
    }
}

pub async fn list(cx: Ctx, uri: Uri) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::ReadNotices)?;
    let q = query(&uri);
    let bad = |field: &str| {
        WebError::new(
            cx.lang,
            StatusCode::BAD_REQUEST,
            "error-400-title",
            cx.tf("error-bad-filter", &[("field", field)]),
        )
    };
    let list = ListState::parse(
        &cx,
        "/notices",
        &q,
        &["created", "state", "category", "urgency", "deadline"],
        false,
    )?;
    let nonempty = |k: &str| Some(q.get(k).trim()).filter(|v| !v.is_empty());
    let mut f = NoticeFilter {
        state: nonempty("state")
            .map(NoticeState::parse)
            .transpose()
            .map_err(|_| bad("state"))?,
        platform_id: nonempty("platform")
            .map(PartyId::parse)
            .transpose()
            .map_err(|_| bad("platform"))?,
        category: nonempty("category").map(str::to_owned),
        overdue: q.get("overdue") == "1",
        before: nonempty("before")
            .map(NoticeId::parse)
            .transpose()
            .map_err(|_| bad("before"))?,
        limit: PAGE,
        sort: NOTICE_SORTS
            .iter()
            .find(|(k, _)| *k == list.sort)
            .map(|(k, _)| (*k, list.ascending)),
        offset: list.offset(),
        ..Default::default()
    };
    if f.category
        .as_ref()
        .is_some_and(|c| c.len() > 100 || c.contains('\0'))
    {
        return Err(bad("category"));
    }
    let p = &s.principal;
    let mut hide = false;
    match p.party_kind {
        _ if p.role.reads_everything() => {}
        PartyKind::Platform => {
            hide = f.platform_id.is_some_and(|x| x != p.party_id);
            f.platform_id = Some(p.party_id);
            f.exclude_drafts = true;
        }
        _ => f.issuer_party_id = Some(p.party_id),
    }
    let notices = if hide {
        vec![]
    } else {
        cx.state
            .store
            .list_notices(&f)
            .await
            .map_err(|e| WebError::from_store(cx.lang, e))?
    };
    let platforms = cx
        .state
        .store
        .list_parties(Some(PartyKind::Platform))
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let name_of = |id: PartyId| {
        platforms
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let shows_platform_filter = p.role.reads_everything();
    let body = html! {
        h1 { (cx.t("notices-title")) }
        @if p.role == Role::Officer { p { a href="/notices/new" { (cx.t("nav-compose")) } } }
        form.filters method="get" action="/notices" aria-label=(cx.t("filters")) {
            div {
                label for="f-state" { (cx.t("col-state")) }
                select id="f-state" name="state" {
                    option value="" { (cx.t("any")) }
                    @for st in NoticeState::ALL {
                        option value=(st.as_str()) selected[f.state == Some(*st)] { (crate::layout::state_name(cx.lang, st.as_str())) }
                    }
                }
            }
            @if shows_platform_filter {
                div {
                    label for="f-platform" { (cx.t("col-platform")) }
                    select id="f-platform" name="platform" {
                        option value="" { (cx.t("any")) }
                        @for pl in &platforms {
                            option value=(pl.id.to_string()) selected[f.platform_id == Some(pl.id)] { (pl.name) }
                        }
                    }
                }
            }
            div {
                label for="f-category" { (cx.t("col-category")) }
                select id="f-category" name="category" {
                    option value="" { (cx.t("any")) }
                    @for c in &cx.state.taxonomy.categories {
                        option value=(c.id) selected[f.category.as_deref() == Some(c.id.as_str())] { (c.label) }
                    }
                }
            }
            div {
                label for="f-overdue" { (cx.t("filter-overdue")) }
                input type="checkbox" id="f-overdue" name="overdue" value="1" checked[f.overdue];
            }
            @if !q.get("sort").is_empty() { input type="hidden" name="sort" value=(list.sort); }
            @if !q.get("dir").is_empty() { input type="hidden" name="dir" value=(if list.ascending { "asc" } else { "desc" }); }
            button type="submit" { (cx.t("filter-apply")) }
        }
        div.table-wrap {
            table {
                caption.muted { (cx.tf("notices-count", &[("n", &cx.lang.number(notices.len() as i64))])) }
                thead { tr {
                    th scope="col" { (cx.t("col-notice")) }
                    (list.th(&cx, "state", cx.t("col-state")))
                    th scope="col" { (cx.t("col-platform")) }
                    (list.th(&cx, "category", cx.t("col-category")))
                    (list.th(&cx, "urgency", cx.t("col-urgency")))
                    th.num scope="col" { (cx.t("col-items")) }
                    (list.th(&cx, "created", cx.t("col-created")))
                    (list.th(&cx, "deadline", cx.t("col-deadline")))
                } }
                tbody {
                    @for n in &notices {
                        tr {
                            td { a href={ "/notices/" (n.id) } { code { (short(&n.id.to_string())) } } }
                            td { (badge(&cx, n.state.as_str())) }
                            td { (name_of(n.platform_id)) }
                            td { (n.category.replace('_', " ")) }
                            td { (cx.t(if n.urgency.as_str() == "urgent" { "urgency-urgent" } else { "urgency-normal" })) }
                            td.num { (n.items.len()) }
                            td { (time(&cx, n.created_at)) }
                            td { (deadline(&cx, n.due_at, is_open(n.state))) }
                        }
                    }
                    @if notices.is_empty() { tr { td colspan="8" { (cx.t("empty")) } } }
                }
            }
        }
        (list.pager(&cx, notices.len() as u32 == PAGE))
    };
    Ok(page(&cx, cx.t("notices-title"), body).into_response())
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The notice a session may see, or a 404 page.
pub(crate) async fn visible(cx: &Ctx, s: &Session, raw: &str) -> Result<Notice, WebError> {
    may(cx, s, Action::ReadNotices)?;
    let id = NoticeId::parse(raw).map_err(|_| WebError::not_found(cx.lang))?;
    let p = &s.principal;
    let store = &cx.state.store;
    let err = |e| WebError::from_store(cx.lang, e);
    if p.role.reads_everything() {
        return store.get_notice(id).await.map_err(err);
    }
    if p.party_kind == PartyKind::Platform {
        // an authenticated fetch by the platform counts as delivery, as in the API
        return store.fetch_as_platform(p, id).await.map_err(err);
    }
    let n = store.get_notice(id).await.map_err(err)?;
    if n.issuer_party_id != p.party_id {
        return Err(WebError::not_found(cx.lang));
    }
    Ok(n)
}

pub async fn detail(cx: Ctx, Path(id): Path<String>) -> Result<Response, WebError> {
    let s = cx.require()?;
    let n = visible(&cx, s, &id).await?;
    Ok(render_detail(&cx, s, &n, None).await.into_response())
}

/// One notice's page; for the addressed platform's people, with the
/// acknowledge and decision forms (`super::inbox::actions`) and, after a
/// refused action, its message.
pub(crate) async fn render_detail(
    cx: &Ctx,
    s: &Session,
    n: &Notice,
    error: Option<String>,
) -> axum::response::Html<String> {
    let platform = cx
        .state
        .store
        .get_party(n.platform_id)
        .await
        .map(|p| p.name)
        .unwrap_or_default();
    let title = cx.tf("notice-title", &[("id", short(&n.id.to_string()))]);
    let questions = super::appeal::questions_section(cx, s, n).await;
    let record = super::record::section(cx, n).await;
    let body = html! {
        h1 { (title) " " (badge(cx, n.state.as_str())) }
        @if let Some(e) = &error { p.error role="alert" { (e) } }
        dl.facts {
            dt { (cx.t("col-notice")) } dd { code { (n.id) } }
            dt { (cx.t("col-platform")) } dd { (platform) }
            dt { (cx.t("col-issuer")) } dd { (n.issuer_label) }
            dt { (cx.t("col-category")) } dd { (n.category.replace('_', " ")) }
            dt { (cx.t("col-urgency")) } dd { (cx.t(if n.urgency.as_str() == "urgent" { "urgency-urgent" } else { "urgency-normal" })) }
            dt { (cx.t("compose-legal-ref")) } dd { (n.legal_basis.reference) }
            dt { (cx.t("compose-legal-text")) } dd { (n.legal_basis.text) }
            dt { (cx.t("compose-explanation")) } dd { (n.explanation) }
            dt { (cx.t("col-created")) } dd { (time(cx, n.created_at)) }
            dt { (cx.t("col-submitted")) } dd { (maybe_time(cx, n.submitted_at)) }
            dt { (cx.t("col-delivered")) } dd { (maybe_time(cx, n.delivered_at)) }
            dt { (cx.t("col-acknowledged")) } dd { (maybe_time(cx, n.acknowledged_at)) }
            dt { (cx.t("col-deadline")) } dd { (deadline(cx, n.due_at, is_open(n.state))) }
            dt { (cx.t("col-closed")) } dd { (maybe_time(cx, n.closed_at)) }
            @if let Some(h) = &n.document_sha256 { dt { (cx.t("col-document")) } dd { code { (h) } } }
        }
        h2 { (cx.t("notice-items")) }
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { (cx.t("compose-item-kind")) }
                    th scope="col" { (cx.t("compose-item-value")) }
                    th scope="col" { (cx.t("col-state")) }
                    th scope="col" { (cx.t("col-reason")) }
                    th scope="col" { (cx.t("col-decided")) }
                } }
                tbody {
                    @for (i, it) in n.items.iter().enumerate() {
                        tr {
                            td.num { (i + 1) }
                            td { (it.kind.as_str().replace('_', " ")) }
                            td {
                                code { (it.value) } @if let Some(nid) = &it.native_id { br; small.muted { (nid) } }
                                @for e in &it.evidence {
                                    br; small.evidence { (cx.t("notice-evidence")) " SHA-256 " code { (e.sha256) } " · " (e.description) " · " (time(cx, e.captured_at)) }
                                }
                            }
                            td { (badge(cx, it.state.as_str())) }
                            td { @if let Some(r) = &it.reason { (r) } }
                            td { (maybe_time(cx, it.decided_at)) }
                        }
                    }
                }
            }
        }
        (super::inbox::actions(cx, s, n))
        (questions)
        (record)
        p { a href="/notices" { (cx.t("back-to-list")) } }
    };
    page(cx, &title, body)
}

struct Draft<'a> {
    form: &'a Form,
}

impl Draft<'_> {
    fn v(&self, k: &str) -> &str {
        self.form.get(k)
    }
}

async fn composer(
    cx: &Ctx,
    s: &Session,
    form: &Form,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let platforms = cx
        .state
        .store
        .list_parties(Some(PartyKind::Platform))
        .await
        .map_err(|e| WebError::from_store(cx.lang, e))?;
    let d = Draft { form };
    let key = if d.v("idempotency_key").is_empty() {
        random_token()
    } else {
        d.v("idempotency_key").to_owned()
    };
    Ok(html! {
        h1 { (cx.t("compose-title")) }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.stack method="post" action="/notices/new" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="idempotency_key" value=(key);
            div {
                label for="platform" { (cx.t("col-platform")) }
                select id="platform" name="platform_id" required {
                    @for p in &platforms { option value=(p.id.to_string()) selected[d.v("platform_id") == p.id.to_string()] { (p.name) } }
                }
            }
            div {
                label for="category" { (cx.t("col-category")) }
                select id="category" name="category" required {
                    @for c in &cx.state.taxonomy.categories { option value=(c.id) selected[d.v("category") == c.id] { (c.label) } }
                }
            }
            div {
                label for="urgency" { (cx.t("col-urgency")) }
                select id="urgency" name="urgency" {
                    option value="normal" selected[d.v("urgency") != "urgent"] { (cx.t("urgency-normal")) }
                    option value="urgent" selected[d.v("urgency") == "urgent"] { (cx.t("urgency-urgent")) }
                }
            }
            div {
                label for="legal_ref" { (cx.t("compose-legal-ref")) }
                input type="text" id="legal_ref" name="legal_reference" value=(d.v("legal_reference")) required;
            }
            div {
                label for="legal_text" { (cx.t("compose-legal-text")) }
                textarea id="legal_text" name="legal_text" required { (d.v("legal_text")) }
            }
            div {
                label for="explanation" { (cx.t("compose-explanation")) }
                textarea id="explanation" name="explanation" required { (d.v("explanation")) }
            }
            fieldset {
                legend { (cx.t("notice-items")) }
                p.muted { small { (cx.t("compose-items-help")) } }
                @for i in 0..ITEM_ROWS {
                    @let kind_name = format!("item_kind_{i}");
                    @let value_name = format!("item_value_{i}");
                    div.items-row {
                        div {
                            label for=(kind_name) { (cx.tf("compose-item-kind-n", &[("n", &(i + 1).to_string())])) }
                            select id=(kind_name) name=(kind_name) {
                                @for k in ITEM_KINDS { option value=(k) selected[d.v(&kind_name) == k] { (cx.t(&format!("kind-{k}"))) } }
                            }
                        }
                        div {
                            label for=(value_name) { (cx.tf("compose-item-value-n", &[("n", &(i + 1).to_string())])) }
                            input type="text" id=(value_name) name=(value_name) value=(d.v(&value_name)) required[i == 0] spellcheck="false";
                        }
                    }
                    (evidence_fields(cx, &d, i))
                }
            }
            div.check {
                input type="checkbox" id="no_notify" name="no_notify" value="1" checked[d.v("no_notify") == "1"];
                " "
                label for="no_notify" { (cx.t("compose-no-notify")) }
            }
            div { button type="submit" { (cx.t("compose-go")) } }
        }
    })
}

/// An item's optional evidence: the SHA-256 of the screenshot or archived
/// copy (made where the file is, e.g. `sha256sum`: the file itself never
/// travels), what it shows, and when it was captured (in the authority's
/// zone).
fn evidence_fields(cx: &Ctx, d: &Draft<'_>, i: usize) -> Markup {
    let n = (i + 1).to_string();
    let (sha, desc, at, file) = (
        format!("evidence_sha256_{i}"),
        format!("evidence_description_{i}"),
        format!("evidence_captured_{i}"),
        format!("evidence_file_{i}"),
    );
    html! {
        details.evidence open[!d.v(&sha).is_empty()] {
            summary { (cx.tf("compose-evidence-n", &[("n", &n)])) }
            p.muted { small { (cx.t("compose-evidence-help")) } }
            div.items-row {
                label for=(file) { (cx.tf("compose-evidence-file", &[("limit", &cx.lang.number((cx.state.config.evidence_max_bytes / (1024 * 1024)) as i64))])) }
                input type="file" id=(file) name=(file);
                label for=(sha) { (cx.t("compose-evidence-sha256")) }
                input type="text" id=(sha) name=(sha) value=(d.v(&sha)) pattern="[0-9a-fA-F]{64}" spellcheck="false" autocomplete="off";
                label for=(desc) { (cx.t("compose-evidence-description")) }
                input type="text" id=(desc) name=(desc) value=(d.v(&desc)) maxlength="500";
                label for=(at) { (cx.tf("compose-evidence-captured", &[("zone", &cx.state.config.zone_label)])) }
                input type="datetime-local" id=(at) name=(at) value=(d.v(&at));
            }
        }
    }
}

/// An item's evidence from the form: none when no hash was given. The
/// capture time is read in the authority's zone (a browser's
/// `datetime-local` has none); core checks every field.
fn evidence_of(cx: &Ctx, form: &Form, i: usize) -> Vec<EvidenceInput> {
    let sha = form.get(&format!("evidence_sha256_{i}")).trim();
    if sha.is_empty() {
        return vec![];
    }
    let at = form.get(&format!("evidence_captured_{i}")).trim();
    let captured_at = if at.is_empty() {
        String::new()
    } else {
        let z = cx.state.config.time_zone;
        let seconds = if at.len() == 16 { ":00" } else { "" };
        format!(
            "{at}{seconds}{}{:02}:{:02}",
            if z.is_negative() { '-' } else { '+' },
            z.whole_hours().unsigned_abs(),
            z.minutes_past_hour().unsigned_abs()
        )
    };
    vec![EvidenceInput {
        sha256: sha.to_owned(),
        description: form
            .get(&format!("evidence_description_{i}"))
            .trim()
            .to_owned(),
        captured_at,
    }]
}

pub async fn compose(cx: Ctx) -> Result<Response, WebError> {
    let s = cx.require()?;
    may(&cx, s, Action::SubmitNotice)?;
    let body = composer(&cx, s, &Form::default(), None).await?;
    Ok(page(&cx, cx.t("compose-title"), body).into_response())
}

/// A composed notice: a multipart form (its evidence files hashed on the
/// way in, `super::evidence`), or a plain form for clients without files.
pub async fn submit(cx: Ctx, req: Request) -> Result<Response, WebError> {
    let s = cx.require()?;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let (form, refusal) = if multipart {
        let mp = Multipart::from_request(req, &()).await.map_err(|_| {
            WebError::new(
                cx.lang,
                StatusCode::BAD_REQUEST,
                "error-400-title",
                cx.t("error-bad-form").to_owned(),
            )
        })?;
        // who may submit is known before a byte of a file is read
        may(&cx, s, Action::SubmitNotice)?;
        let mut sub = super::evidence::read(&cx, mp, ITEM_ROWS).await?;
        let refusal = super::evidence::apply(&cx, &mut sub).err();
        (sub.form, refusal)
    } else {
        let body = axum::body::to_bytes(req.into_body(), super::evidence::TEXT_MAX)
            .await
            .map_err(|_| super::evidence::too_large(&cx))?;
        let form = Form::parse(&body);
        crate::session::check_csrf(&cx, &form)?;
        may(&cx, s, Action::SubmitNotice)?;
        (form, None)
    };
    let items: Vec<ItemInput> = (0..ITEM_ROWS)
        .filter_map(|i| {
            let value = form.get(&format!("item_value_{i}")).trim();
            (!value.is_empty()).then(|| ItemInput {
                kind: form.get(&format!("item_kind_{i}")).to_owned(),
                value: value.to_owned(),
                native_id: None,
                evidence: evidence_of(&cx, &form, i),
            })
        })
        .collect();
    let input = NoticeInput {
        platform_id: form.get("platform_id").to_owned(),
        category: form.get("category").to_owned(),
        urgency: form.get("urgency").to_owned(),
        legal_basis: LegalBasisInput {
            reference: form.get("legal_reference").to_owned(),
            text: form.get("legal_text").to_owned(),
        },
        explanation: form.get("explanation").to_owned(),
        items,
        territorial_scope: vec![],
        may_notify_user: Some(form.get("no_notify") != "1"),
        draft: false,
    };
    let key = form.get("idempotency_key").trim().to_owned();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebError::new(
            cx.lang,
            StatusCode::BAD_REQUEST,
            "error-400-title",
            cx.t("error-bad-form").to_owned(),
        ));
    }
    // the request's fingerprint: every field but the CSRF token, in order
    let mut h = Sha256::new();
    for (k, v) in form.0.iter().filter(|(k, _)| k != "csrf") {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let fingerprint = hex::encode(h.finalize());
    let again = |msg: String| async {
        let body = composer(&cx, s, &form, Some(msg)).await?;
        Ok::<_, WebError>(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&cx, cx.t("compose-title"), body),
            )
                .into_response(),
        )
    };
    if let Some(msg) = refusal {
        return again(msg).await;
    }
    let new = match NewNotice::parse(
        input,
        &cx.state.taxonomy,
        cx.state.notice_limits,
        cx.state.store.now(),
    ) {
        Ok(n) => n,
        Err(e) => return again(e.to_string()).await,
    };
    match cx
        .state
        .store
        .create_notice(&s.principal, new, Some((&key, &fingerprint)))
        .await
    {
        Ok(created) => Ok(Redirect::to(&format!("/notices/{}", created.notice.id)).into_response()),
        Err(
            e @ (tapis_store::Error::Domain(tapis_core::Error::Invalid { .. })
            | tapis_store::Error::Conflict(_)),
        ) => again(e.to_string()).await,
        Err(e) => Err(WebError::from_store(cx.lang, e)),
    }
}
