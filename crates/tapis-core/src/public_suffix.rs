//! The public suffix list (publicsuffix.org): the names under which anyone
//! can register, including shared-hosting domains such as `github.io`. Due
//! process asks it whether an order's target is, or covers, such a shared
//! namespace (then the order needs an independent authorisation).
//!
//! A copy is bundled (`data/public_suffix_list.dat`, from Debian's
//! `publicsuffix` package; source, date and licence in
//! `data/public_suffix_list.README.md`) and compiled in, so the check never
//! depends on a file being installed; an operator may point
//! `[due_process] public_suffix_list` at a newer file, and a file that
//! cannot be read stops tapis from starting. Which list is in use (its
//! source and version) is kept with it and shown on `/healthz`.
//!
//! Why our own parser rather than the `publicsuffix` or `psl` crates: due
//! process needs to know whether a target *with its subdomains* covers a
//! suffix below it (`id` covers `co.id`), which those crates do not answer
//! (they find the suffix of one name); the format is one rule a line and
//! the parser is forty lines over `idna`, which core already uses.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;

/// The bundled list's text (compiled in).
const BUNDLED: &str = include_str!("../data/public_suffix_list.dat");

/// Where the bundled copy comes from.
pub const BUNDLED_SOURCE: &str = "bundled: Debian publicsuffix 20230209.2326-1";

/// The upstream date of the bundled copy.
pub const BUNDLED_VERSION: &str = "2023-02-09";

/// Which list is in use: said on `/healthz` and in the start-up log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListOrigin {
    /// `bundled: …`, the file's path, or `none` (top-level domains only).
    pub source: String,
    /// The list's date (its `// VERSION:` line for a file that has one).
    pub version: String,
}

impl Default for ListOrigin {
    fn default() -> Self {
        ListOrigin {
            source: "none: only top-level domains count".into(),
            version: "none".into(),
        }
    }
}

impl ListOrigin {
    /// The origin of a list read from the file at `path` with `text`: the
    /// version from its `// VERSION: …` header line, when it has one.
    pub fn file(path: &str, text: &str) -> ListOrigin {
        let version = text
            .lines()
            .take_while(|l| l.starts_with("//") || l.trim().is_empty())
            .find_map(|l| l.strip_prefix("// VERSION:"))
            .map_or_else(
                || "unknown (the file has no VERSION line)".to_owned(),
                |v| v.trim().to_owned(),
            );
        ListOrigin {
            source: path.to_owned(),
            version,
        }
    }
}

/// A parsed public suffix list. Rules are kept in their ASCII (punycode)
/// form.
#[derive(Debug, Clone, Default)]
pub struct PublicSuffixList {
    rules: HashSet<String>,
    /// `*.ck`: every child of `ck` is a suffix (kept as `ck`).
    wildcards: HashSet<String>,
    /// `!www.ck`: an exception to a wildcard.
    exceptions: HashSet<String>,
    /// Every proper parent of a rule: a target with subdomains there
    /// covers a suffix.
    parents: HashSet<String>,
    /// Treat every single-label name as a suffix (the fallback when no
    /// list file is available).
    all_tlds: bool,
    origin: ListOrigin,
}

static BUNDLED_LIST: LazyLock<PublicSuffixList> = LazyLock::new(|| {
    let (list, _) = PublicSuffixList::parse(BUNDLED);
    list.with_origin(ListOrigin {
        source: BUNDLED_SOURCE.into(),
        version: BUNDLED_VERSION.into(),
    })
});

impl PublicSuffixList {
    /// Only top-level domains count: what a policy without a list knows.
    pub fn tlds_only() -> PublicSuffixList {
        PublicSuffixList {
            all_tlds: true,
            ..Default::default()
        }
    }

    /// The bundled copy (parsed once per process).
    pub fn bundled() -> PublicSuffixList {
        BUNDLED_LIST.clone()
    }

    /// Parse the list's text format (comments `//`, one rule a line, the
    /// first whitespace-separated word). Unparseable rules are skipped;
    /// returns the list and how many were skipped.
    pub fn parse(text: &str) -> (PublicSuffixList, usize) {
        let mut l = PublicSuffixList {
            all_tlds: true,
            origin: ListOrigin {
                source: "text".into(),
                version: "unknown".into(),
            },
            ..Default::default()
        };
        let mut skipped = 0;
        for line in text.lines() {
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if rule.starts_with("//") {
                continue;
            }
            let (set, body) = if let Some(r) = rule.strip_prefix('!') {
                (2, r)
            } else if let Some(r) = rule.strip_prefix("*.") {
                (1, r)
            } else {
                (0, rule)
            };
            // rules may be single labels (`com`), which a DomainName is not
            let name = match idna::domain_to_ascii(body) {
                Ok(n) if !n.is_empty() && !n.starts_with('.') && !n.ends_with('.') => n,
                _ => {
                    skipped += 1;
                    continue;
                }
            };
            let mut parent = name.as_str();
            while let Some((_, rest)) = parent.split_once('.') {
                l.parents.insert(rest.to_owned());
                parent = rest;
            }
            if set == 1 {
                l.parents.insert(name.clone());
            }
            match set {
                0 => l.rules.insert(name),
                1 => l.wildcards.insert(name),
                _ => l.exceptions.insert(name),
            };
        }
        (l, skipped)
    }

    /// The same list, said to come from `origin`.
    pub fn with_origin(mut self, origin: ListOrigin) -> PublicSuffixList {
        self.origin = origin;
        self
    }

    /// Which list this is.
    pub fn origin(&self) -> &ListOrigin {
        &self.origin
    }

    pub fn len(&self) -> usize {
        self.rules.len() + self.wildcards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `name` (ASCII, lowercase) is a public suffix.
    pub fn is_suffix(&self, name: &str) -> bool {
        if self.exceptions.contains(name) {
            return false;
        }
        if self.rules.contains(name) || (self.all_tlds && !name.contains('.')) {
            return true;
        }
        name.split_once('.')
            .is_some_and(|(_, parent)| self.wildcards.contains(parent))
    }

    /// The suffix a target touches: the target itself is one, or (with
    /// subdomains) one lies below it. `None` for an ordinary site.
    pub fn touched_by(&self, target: &str, include_subdomains: bool) -> Option<String> {
        if self.is_suffix(target) {
            return Some(target.to_owned());
        }
        if include_subdomains && self.parents.contains(target) {
            // name one suffix below, for the record
            let below = self
                .rules
                .iter()
                .chain(self.wildcards.iter())
                .filter(|r| r.len() > target.len() && r.ends_with(&format!(".{target}")))
                .min_by_key(|r| r.len())
                .cloned();
            return Some(below.unwrap_or_else(|| format!("*.{target}")));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "// comment\ncom\nco.id\nid\n*.ck\n!www.ck\ngithub.io\nio\n// ===END===\n";

    #[test]
    fn public_suffixes() {
        let (l, skipped) = PublicSuffixList::parse(LIST);
        assert_eq!(skipped, 0);
        for s in ["com", "co.id", "github.io", "any.ck", "org"] {
            assert!(l.is_suffix(s), "{s}");
        }
        for s in ["example.com", "www.ck", "user.github.io", "judi.co.id"] {
            assert!(!l.is_suffix(s), "{s}");
        }
        assert_eq!(l.touched_by("github.io", false), Some("github.io".into()));
        assert_eq!(l.touched_by("user.github.io", true), None);
        // a block of `id` with subdomains covers co.id
        assert_eq!(l.touched_by("id", true), Some("id".into()));
        assert_eq!(l.touched_by("judi.example", true), None);
    }

    #[test]
    fn the_bundled_list_parses_and_says_where_it_comes_from() {
        let (l, skipped) = PublicSuffixList::parse(BUNDLED);
        assert!(l.len() > 5_000, "{}", l.len());
        assert!(skipped < 10, "{skipped}");
        let l = PublicSuffixList::bundled();
        assert!(l.is_suffix("co.id") && l.is_suffix("github.io") && l.is_suffix("blogspot.com"));
        assert!(!l.is_suffix("kominfo.go.id"));
        assert_eq!(l.origin().version, BUNDLED_VERSION);
        assert!(l.origin().source.starts_with("bundled"), "{:?}", l.origin());
        assert_eq!(PublicSuffixList::tlds_only().origin().version, "none");
    }

    #[test]
    fn a_file_names_its_version_when_it_has_one() {
        let o = ListOrigin::file(
            "/x.dat",
            "// VERSION: 2025-06-01_12-00-00_UTC\n// COMMIT: abc\ncom\n",
        );
        assert_eq!(o.version, "2025-06-01_12-00-00_UTC");
        assert_eq!(o.source, "/x.dat");
        assert!(
            ListOrigin::file("/y.dat", "com\n")
                .version
                .starts_with("unknown")
        );
    }
}
