//! Trusted-flagger status: the authority grants a flagger party status
//! with one platform, for a scope (categories and item kinds); the
//! platform confirms it through its own account; the authority may suspend
//! and reinstate it (each an audited event). Notices from flags a
//! confirmed grant covers are marked `trusted_flagger`, go first in the
//! platform's inbox and get the policy's shorter deadline.
//!
//! States: `granted → confirmed ⇄ suspended`; `revoked` from any.

use serde::Deserialize;

use crate::notice::string_enum;
use crate::target::ItemKind;
use crate::taxonomy::Taxonomy;
use crate::{Error, PartyId, Result};

string_enum!(
    /// Where a trusted-flagger grant is.
    GrantState, "state" {
        Granted = "granted",
        Confirmed = "confirmed",
        Suspended = "suspended",
        Revoked = "revoked",
    }
);

/// What can happen to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEvent {
    /// The platform confirms through its own account.
    Confirm,
    Suspend,
    Reinstate,
    Revoke,
}

impl GrantEvent {
    fn verb(self) -> &'static str {
        match self {
            GrantEvent::Confirm => "confirm",
            GrantEvent::Suspend => "suspend",
            GrantEvent::Reinstate => "reinstate",
            GrantEvent::Revoke => "revoke",
        }
    }
}

impl GrantState {
    /// The grant state machine.
    pub fn on(self, event: GrantEvent) -> Result<GrantState> {
        use GrantEvent as E;
        use GrantState as S;
        let next = match (self, event) {
            (S::Granted, E::Confirm) => Some(S::Confirmed),
            (S::Confirmed, E::Suspend) => Some(S::Suspended),
            (S::Suspended, E::Reinstate) => Some(S::Confirmed),
            (s, E::Revoke) if s != S::Revoked => Some(S::Revoked),
            _ => None,
        };
        next.ok_or_else(|| Error::IllegalTransition {
            entity: "trusted-flagger grant",
            state: self.as_str().to_owned(),
            action: event.verb().to_owned(),
        })
    }

    /// Only a confirmed grant gives priority.
    pub fn is_effective(self) -> bool {
        self == GrantState::Confirmed
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantInput {
    /// The flagger party.
    pub flagger_id: String,
    /// The platform the status is with.
    pub platform_id: String,
    /// Categories it covers (taxonomy ids); at least one.
    pub categories: Vec<String>,
    /// Item kinds it covers; empty: every kind.
    #[serde(default)]
    pub item_kinds: Vec<String>,
}

/// A grant's scope, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub flagger_id: PartyId,
    pub platform_id: PartyId,
    pub categories: Vec<String>,
    pub item_kinds: Vec<ItemKind>,
}

impl NewGrant {
    pub fn parse(input: GrantInput, taxonomy: &Taxonomy) -> Result<NewGrant> {
        let id = |field: &str, raw: &str| {
            PartyId::parse(raw.trim()).map_err(|_| Error::invalid(field, "not a valid party id"))
        };
        if input.categories.is_empty() || input.categories.len() > 100 {
            return Err(Error::invalid(
                "categories",
                "name between 1 and 100 categories",
            ));
        }
        let mut categories = Vec::new();
        for (i, c) in input.categories.iter().enumerate() {
            let c = taxonomy
                .category(c)
                .map_err(|e| e.within(&format!("categories[{i}]")))?
                .id
                .clone();
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
        if input.item_kinds.len() > ItemKind::ALL.len() * 2 {
            return Err(Error::invalid("item_kinds", "too many item kinds"));
        }
        let mut item_kinds = Vec::new();
        for (i, k) in input.item_kinds.iter().enumerate() {
            let k = ItemKind::parse(k).map_err(|e| e.within(&format!("item_kinds[{i}]")))?;
            if !item_kinds.contains(&k) {
                item_kinds.push(k);
            }
        }
        Ok(NewGrant {
            flagger_id: id("flagger_id", &input.flagger_id)?,
            platform_id: id("platform_id", &input.platform_id)?,
            categories,
            item_kinds,
        })
    }
}

/// Whether a grant's scope covers a notice of `category` with items of
/// `kinds` (an empty kind list covers every kind).
pub fn covers(
    categories: &[String],
    item_kinds: &[ItemKind],
    category: &str,
    kinds: &[ItemKind],
) -> bool {
    categories.iter().any(|c| c == category)
        && (item_kinds.is_empty() || kinds.iter().all(|k| item_kinds.contains(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_confirmed_by_the_platform_and_can_be_suspended() {
        use GrantEvent::*;
        use GrantState::*;
        assert_eq!(Granted.on(Confirm), Ok(Confirmed));
        assert!(Granted.on(Suspend).is_err(), "nothing to suspend yet");
        assert_eq!(Confirmed.on(Suspend), Ok(Suspended));
        assert!(Suspended.on(Confirm).is_err());
        assert_eq!(Suspended.on(Reinstate), Ok(Confirmed));
        assert_eq!(Confirmed.on(Revoke), Ok(Revoked));
        assert!(Revoked.on(Revoke).is_err());
        assert!(Confirmed.is_effective() && !Granted.is_effective() && !Suspended.is_effective());
    }

    #[test]
    fn scope_covers_category_and_every_kind() {
        let cats = vec!["terrorism".to_owned()];
        assert!(covers(&cats, &[], "terrorism", &[ItemKind::Url]));
        assert!(!covers(&cats, &[], "fraud", &[ItemKind::Url]));
        let kinds = [ItemKind::PlatformChannel];
        assert!(covers(
            &cats,
            &kinds,
            "terrorism",
            &[ItemKind::PlatformChannel]
        ));
        assert!(!covers(
            &cats,
            &kinds,
            "terrorism",
            &[ItemKind::PlatformChannel, ItemKind::Url]
        ));
    }

    #[test]
    fn bad_grants_name_the_field() {
        let t = Taxonomy::bundled();
        let input = |cats: Vec<&str>, kinds: Vec<&str>| GrantInput {
            flagger_id: PartyId::new().to_string(),
            platform_id: PartyId::new().to_string(),
            categories: cats.into_iter().map(str::to_owned).collect(),
            item_kinds: kinds.into_iter().map(str::to_owned).collect(),
        };
        let err = |i| NewGrant::parse(i, &t).expect_err("bad").to_string();
        assert!(err(input(vec![], vec![])).starts_with("categories"));
        assert!(err(input(vec!["jaywalking"], vec![])).starts_with("categories[0]"));
        assert!(err(input(vec!["fraud"], vec!["tweet"])).starts_with("item_kinds[0]"));
        assert!(NewGrant::parse(input(vec!["fraud"], vec!["url"]), &t).is_ok());
    }
}
