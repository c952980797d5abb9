//! Due process on the blocking path: which orders need an independent
//! authoriser's signature before they are published, the statement the
//! authoriser signs, and the public suffix list that tells a shared
//! namespace (`co.id`, `github.io`) from one site.
//!
//! A DNS block of a platform's own domain, of a public suffix or of a
//! widely used site hits everyone on it, whatever a handful of its pages
//! carried. Such orders are never published on one ministry's say-so.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::order::OrderTarget;
use crate::target::DomainName;

/// What the due-process policy says (the `[due_process]` settings).
#[derive(Debug, Clone)]
pub struct DueProcessPolicy {
    /// How long an emergency order may stay in force without an
    /// authorisation before it lapses by itself.
    pub emergency_max_secs: i64,
    /// Least time between telling an affected platform about a proposed
    /// order and the order taking effect (emergency orders excepted).
    pub platform_lead_secs: i64,
    /// What a missed review date does: lapse the order, or escalate to the
    /// authoriser (the order stays until its expiry).
    pub on_missed_review: MissedReview,
    /// Names whose blocking always needs authorisation (widely used sites).
    pub popular_sites: Vec<DomainName>,
    pub public_suffixes: PublicSuffixList,
}

impl Default for DueProcessPolicy {
    fn default() -> Self {
        DueProcessPolicy {
            emergency_max_secs: 48 * 3600,
            platform_lead_secs: 24 * 3600,
            on_missed_review: MissedReview::Lapse,
            popular_sites: Vec::new(),
            public_suffixes: PublicSuffixList::tlds_only(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedReview {
    Lapse,
    Escalate,
}

/// Why an order needs an independent authorisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Sensitivity {
    /// A target is (or covers, or lies within) a domain a registered
    /// platform operates.
    PlatformDomain {
        target: String,
        platform_id: String,
        domain: String,
    },
    /// A target is a public suffix or shared-hosting domain, or covers one.
    PublicSuffix { target: String, suffix: String },
    /// A target is (or covers, or lies within) a name on the popular-sites
    /// list.
    PopularSite { target: String, site: String },
}

impl Sensitivity {
    pub fn describe(&self) -> String {
        match self {
            Sensitivity::PlatformDomain { target, domain, .. } => {
                format!("{target} touches {domain}, a domain a registered platform operates")
            }
            Sensitivity::PublicSuffix { target, suffix } => {
                format!("{target} touches the public suffix {suffix} (a shared namespace)")
            }
            Sensitivity::PopularSite { target, site } => {
                format!("{target} touches {site}, on the popular-sites list")
            }
        }
    }
}

/// Where a sensitive name comes from.
#[derive(Debug, Clone)]
enum Source {
    Platform { party: String, domain: String },
    Popular(String),
}

/// The names whose blocking needs authorisation, indexed so that a target
/// costs a few hash lookups (its own name and each parent), whatever the
/// number of platforms, popular sites or targets: a national list of ten
/// million names is checked in one pass.
#[derive(Debug, Clone, Default)]
pub struct SensitiveIndex {
    /// Sensitive name → where it comes from.
    exact: HashMap<String, Vec<Source>>,
    /// Every proper parent of a sensitive name → the sensitive names below
    /// it (a target with subdomains there covers them).
    below: HashMap<String, Vec<String>>,
}

/// `name` and each of its parents, longest first (`a.b.c`, `b.c`, `c`).
fn self_and_parents(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, rest)| rest))
}

impl SensitiveIndex {
    /// The index for a policy's popular sites and the registered platforms'
    /// domains (party id, domain).
    pub fn new(policy: &DueProcessPolicy, platform_domains: &[(String, DomainName)]) -> Self {
        let mut ix = SensitiveIndex::default();
        let mut add = |name: &str, src: Source| {
            ix.exact.entry(name.to_owned()).or_default().push(src);
            for p in self_and_parents(name).skip(1) {
                let v = ix.below.entry(p.to_owned()).or_default();
                if !v.iter().any(|x| x == name) {
                    v.push(name.to_owned());
                }
            }
        };
        for (party, d) in platform_domains {
            add(
                d.as_str(),
                Source::Platform {
                    party: party.clone(),
                    domain: d.as_str().to_owned(),
                },
            );
        }
        for site in &policy.popular_sites {
            add(site.as_str(), Source::Popular(site.as_str().to_owned()));
        }
        ix
    }

    /// Why one target (a normalised name, as stored) needs authorisation:
    /// appended to `out` (at most `cap` in all); the platforms it affects
    /// are added to `platforms`.
    pub fn check(
        &self,
        policy: &DueProcessPolicy,
        name: &str,
        include_subdomains: bool,
        out: &mut Vec<Sensitivity>,
        platforms: &mut Vec<String>,
        cap: usize,
    ) {
        let mut hit = |src: &Source, out: &mut Vec<Sensitivity>| match src {
            Source::Platform { party, domain } => {
                if !platforms.contains(party) {
                    platforms.push(party.clone());
                }
                if out.len() < cap {
                    out.push(Sensitivity::PlatformDomain {
                        target: name.to_owned(),
                        platform_id: party.clone(),
                        domain: domain.clone(),
                    });
                }
            }
            Source::Popular(site) => {
                if out.len() < cap {
                    out.push(Sensitivity::PopularSite {
                        target: name.to_owned(),
                        site: site.clone(),
                    });
                }
            }
        };
        // the target is, or lies within, a sensitive name
        for p in self_and_parents(name) {
            if let Some(srcs) = self.exact.get(p) {
                for s in srcs {
                    hit(s, out);
                }
            }
        }
        // with subdomains, it covers the sensitive names below it
        if include_subdomains && let Some(names) = self.below.get(name) {
            for n in names {
                for s in &self.exact[n] {
                    hit(s, out);
                }
            }
        }
        if out.len() < cap
            && let Some(suffix) = policy.public_suffixes.touched_by(name, include_subdomains)
        {
            out.push(Sensitivity::PublicSuffix {
                target: name.to_owned(),
                suffix,
            });
        }
    }
}

/// Every reason the targets need an authorisation (at most 20, so a
/// national list does not produce a million reasons).
/// `platform_domains` is (platform party id, domain).
pub fn sensitivities(
    policy: &DueProcessPolicy,
    targets: &[OrderTarget],
    platform_domains: &[(String, DomainName)],
) -> Vec<Sensitivity> {
    assess(policy, targets, platform_domains).0
}

/// The reasons (at most 20) and every platform whose names the targets
/// affect.
pub fn assess(
    policy: &DueProcessPolicy,
    targets: &[OrderTarget],
    platform_domains: &[(String, DomainName)],
) -> (Vec<Sensitivity>, Vec<String>) {
    const CAP: usize = 20;
    let ix = SensitiveIndex::new(policy, platform_domains);
    let mut out = Vec::new();
    let mut platforms = Vec::new();
    for t in targets {
        ix.check(
            policy,
            t.name.as_str(),
            t.include_subdomains,
            &mut out,
            &mut platforms,
            CAP,
        );
    }
    (out, platforms)
}

/// The statement an authoriser signs (Ed25519 over its RFC 8785 form):
/// the order, by id and content hash, and the decision.
pub fn authorisation_statement(order_id: &str, order_sha256: &str, decision: &str) -> Value {
    json!({
        "type": "tapis.authorisation.v1",
        "order_id": order_id,
        "order_sha256": order_sha256,
        "decision": decision,
    })
}

// The list itself (parser, bundled copy, origin) lives in its own module.
pub use crate::public_suffix::{ListOrigin, PublicSuffixList};

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, subs: bool) -> OrderTarget {
        OrderTarget {
            name: DomainName::parse(name).expect("name"),
            include_subdomains: subs,
        }
    }

    const LIST: &str = "// comment\ncom\nco.id\nid\n*.ck\n!www.ck\ngithub.io\nio\n// ===END===\n";

    #[test]
    fn which_orders_need_authorisation() {
        let (psl, _) = PublicSuffixList::parse(LIST);
        let policy = DueProcessPolicy {
            popular_sites: vec![DomainName::parse("wikipedia.org").expect("name")],
            public_suffixes: psl,
            ..Default::default()
        };
        let platforms = vec![
            ("p1".to_owned(), DomainName::parse("t.me").expect("name")),
            (
                "p1".to_owned(),
                DomainName::parse("web.telegram.org").expect("name"),
            ),
        ];
        let s = |targets: &[OrderTarget]| sensitivities(&policy, targets, &platforms);
        assert!(s(&[t("judi.example", true), t("slot.example", false)]).is_empty());
        // the platform's domain, a name inside it, a parent covering it
        for target in [
            t("t.me", false),
            t("x.web.telegram.org", false),
            t("telegram.org", true),
        ] {
            let r = s(std::slice::from_ref(&target));
            assert!(
                r.iter().any(|x| matches!(x, Sensitivity::PlatformDomain { platform_id, .. } if platform_id == "p1")),
                "{target:?}: {r:?}"
            );
        }
        // without subdomains a parent does not touch the platform's name
        assert!(s(&[t("telegram.org", false)]).is_empty());
        assert!(matches!(
            s(&[t("co.id", false)]).as_slice(),
            [Sensitivity::PublicSuffix { suffix, .. }] if suffix == "co.id"
        ));
        assert!(matches!(
            s(&[t("github.io", false)]).as_slice(),
            [Sensitivity::PublicSuffix { suffix, .. }] if suffix == "github.io"
        ));
        assert!(s(&[t("someone.github.io", true)]).is_empty());
        assert!(matches!(
            s(&[t("en.wikipedia.org", false)]).as_slice(),
            [Sensitivity::PopularSite { .. }]
        ));
        let many: Vec<OrderTarget> = (0..100).map(|i| t(&format!("x{i}.t.me"), false)).collect();
        assert_eq!(s(&many).len(), 20, "reasons are capped");
    }
}
