//! The category taxonomy. It is versioned data (`data/taxonomy.json`), not
//! code: adding a category is a data change with a new version, and every
//! notice records the version it was filed under.

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub id: String,
    pub label: String,
    /// Which RFC 8914 Extended DNS Error a block in this category carries.
    pub dns_ede: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    pub version: String,
    pub categories: Vec<Category>,
}

const BUNDLED: &str = include_str!("../data/taxonomy.json");

impl Taxonomy {
    /// The taxonomy shipped with this build.
    pub fn bundled() -> Taxonomy {
        Taxonomy::from_json(BUNDLED).expect("the bundled taxonomy is valid (tested)")
    }

    pub fn from_json(text: &str) -> Result<Taxonomy> {
        let t: Taxonomy = serde_json::from_str(text)
            .map_err(|e| Error::invalid("taxonomy", format!("cannot read taxonomy: {e}")))?;
        if t.categories.is_empty() {
            return Err(Error::invalid("taxonomy", "taxonomy has no categories"));
        }
        Ok(t)
    }

    /// The category with this id, or an error listing the valid ones.
    pub fn category(&self, id: &str) -> Result<&Category> {
        self.categories.iter().find(|c| c.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.categories.iter().map(|c| c.id.as_str()).collect();
            Error::invalid(
                "category",
                format!(
                    "unknown category {:?} (taxonomy {}): use one of {}",
                    truncate(id, 64),
                    self.version,
                    ids.join(", ")
                ),
            )
        })
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_taxonomy_has_the_required_categories() {
        let t = Taxonomy::bundled();
        for id in [
            "terrorism",
            "violent_extremism",
            "child_sexual_abuse",
            "gambling",
            "fraud",
            "disinformation",
            "pornography",
            "public_order",
            "other",
        ] {
            assert!(t.category(id).is_ok(), "{id}");
        }
        let err = t.category("jaywalking").expect_err("unknown");
        assert!(err.to_string().contains("terrorism"), "{err}");
    }
}
