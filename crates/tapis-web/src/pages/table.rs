//! The list helper every table shares: sorting by column through links
//! (`?sort=col&dir=asc`), paging (`?page=N`), and the rest of the query
//! kept as it was, so every state of a list is a URL to share. The sort is
//! done by the server; a column that is not in the page's list is refused
//! as a bad filter.

use axum::http::StatusCode;
use maud::{Markup, html};

use crate::error::WebError;
use crate::session::{Ctx, Form, url_encode};

/// Rows on one page of a list.
pub const PAGE: u32 = 50;

/// A list's sort and page, read from its query.
pub struct ListState<'a> {
    pub sort: &'a str,
    pub ascending: bool,
    /// 1-based.
    pub page: u32,
    query: &'a Form,
    path: &'a str,
}

impl<'a> ListState<'a> {
    /// Read `sort`, `dir` and `page` from `query`; `columns` are the
    /// sortable ones, the first the default (sorted `default_asc`).
    pub fn parse(
        cx: &Ctx,
        path: &'a str,
        query: &'a Form,
        columns: &[&'a str],
        default_asc: bool,
    ) -> Result<Self, WebError> {
        let sort = match query.get("sort") {
            "" => columns.first().copied().unwrap_or(""),
            s => columns
                .iter()
                .find(|c| **c == s)
                .copied()
                .ok_or_else(|| bad_filter(cx, "sort"))?,
        };
        let ascending = match query.get("dir") {
            "" => default_asc,
            "asc" => true,
            "desc" => false,
            _ => return Err(bad_filter(cx, "dir")),
        };
        let page = match query.get("page") {
            "" => 1,
            p => p
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| bad_filter(cx, "page"))?,
        };
        Ok(ListState {
            sort,
            ascending,
            page,
            query,
            path,
        })
    }

    pub fn offset(&self) -> u32 {
        (self.page - 1) * PAGE
    }

    /// This list's URL with `changes` applied (an empty value drops the
    /// key); other filters stay.
    pub fn href(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .0
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        for (k, v) in changes {
            if !v.is_empty() {
                pairs.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        if pairs.is_empty() {
            return self.path.to_owned();
        }
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        format!("{}?{}", self.path, q.join("&"))
    }

    /// A sortable column head: a link that sorts by it (the other way
    /// round when it is already the sort), with `aria-sort`.
    pub fn th(&self, cx: &Ctx, col: &str, label: &str) -> Markup {
        let current = self.sort == col;
        let aria = match (current, self.ascending) {
            (false, _) => "none",
            (true, true) => "ascending",
            (true, false) => "descending",
        };
        let next_dir = if current && self.ascending {
            "desc"
        } else {
            "asc"
        };
        let href = self.href(&[("sort", col), ("dir", next_dir), ("page", "")]);
        html! {
            th scope="col" aria-sort=(aria) {
                a href=(href) title=(cx.tf("sort-by", &[("col", label)])) {
                    (label)
                    @if current { " " span aria-hidden="true" { (if self.ascending { "▲" } else { "▼" }) } }
                }
            }
        }
    }

    /// Links to the previous and next pages (`more`: this page was full).
    pub fn pager(&self, cx: &Ctx, more: bool) -> Markup {
        let prev = (self.page > 1).then(|| (self.page - 1).to_string());
        let next = more.then(|| (self.page + 1).to_string());
        html! {
            @if prev.is_some() || next.is_some() {
                nav.pager aria-label=(cx.t("pager-label")) {
                    @if let Some(p) = &prev { a href=(self.href(&[("page", if p == "1" { "" } else { p })])) rel="prev" { (cx.t("pager-prev")) } " " }
                    span { (cx.tf("pager-page", &[("n", &self.page.to_string())])) }
                    @if let Some(n) = &next { " " a href=(self.href(&[("page", n)])) rel="next" { (cx.t("pager-next")) } }
                }
            }
        }
    }
}

pub fn bad_filter(cx: &Ctx, field: &str) -> WebError {
    WebError::new(
        cx.lang,
        StatusCode::BAD_REQUEST,
        "error-400-title",
        cx.tf("error-bad-filter", &[("field", field)]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_other_filters_and_drop_empty_values() {
        let q = Form::parse(b"state=draft&sort=names&dir=asc&page=3");
        let s = ListState {
            sort: "names",
            ascending: true,
            page: 3,
            query: &q,
            path: "/orders",
        };
        assert_eq!(
            s.href(&[("sort", "state"), ("dir", "asc"), ("page", "")]),
            "/orders?state=draft&sort=state&dir=asc"
        );
        assert_eq!(
            s.href(&[("page", "4")]),
            "/orders?state=draft&sort=names&dir=asc&page=4"
        );
        assert_eq!(s.offset(), 100);
        let empty = Form::default();
        let e = ListState {
            sort: "created",
            ascending: false,
            page: 1,
            query: &empty,
            path: "/audit",
        };
        assert_eq!(e.href(&[("page", "")]), "/audit");
    }
}
