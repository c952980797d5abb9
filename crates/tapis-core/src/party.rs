//! Parties: the organisations that take part. A person or machine acts for
//! exactly one party, and what it may see is bounded by that party.

use serde::{Deserialize, Serialize};

use crate::target::{DomainName, Handle};
use crate::taxonomy::truncate;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PartyKind {
    /// Issues notices and orders (e.g. the ministry).
    Authority,
    /// An agency or NGO that flags content for the authority.
    Flagger,
    /// An online service that receives notices.
    Platform,
    /// An internet service provider or resolver operator.
    Isp,
    /// An independent body (a court, a regulator) whose signed
    /// authorisation some blocking orders need before they are published.
    Authoriser,
}

impl PartyKind {
    pub const ALL: [PartyKind; 5] = [
        PartyKind::Authority,
        PartyKind::Flagger,
        PartyKind::Platform,
        PartyKind::Isp,
        PartyKind::Authoriser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Authority => "authority",
            PartyKind::Flagger => "flagger",
            PartyKind::Platform => "platform",
            PartyKind::Isp => "isp",
            PartyKind::Authoriser => "authoriser",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        PartyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    format!(
                        "unknown party kind {:?}: use authority, flagger, platform, isp or authoriser",
                        truncate(s, 32)
                    ),
                )
            })
    }
}

/// A person or mailbox to reach at a party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// What this contact is for, e.g. `legal`, `operations`, `24x7`.
    #[serde(default)]
    pub role: Option<String>,
}

/// A party as submitted, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartyInput {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Domains the platform operates (platforms only).
    #[serde(default)]
    pub domains: Vec<String>,
    /// Handles the platform operates under, e.g. its official accounts.
    #[serde(default)]
    pub handles: Vec<String>,
}

/// A validated new party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewParty {
    pub kind: PartyKind,
    pub name: String,
    pub contacts: Vec<Contact>,
    pub domains: Vec<DomainName>,
    pub handles: Vec<String>,
}

pub const MAX_CONTACTS: usize = 50;
pub const MAX_DOMAINS: usize = 1000;

impl NewParty {
    pub fn parse(input: PartyInput) -> Result<Self> {
        let kind = PartyKind::parse(&input.kind)?;
        let name = bounded_text("name", &input.name, 1, 200)?;
        if input.contacts.len() > MAX_CONTACTS {
            return Err(Error::invalid(
                "contacts",
                format!("at most {MAX_CONTACTS} contacts"),
            ));
        }
        let mut contacts = Vec::with_capacity(input.contacts.len());
        for (i, c) in input.contacts.into_iter().enumerate() {
            contacts.push(parse_contact(c).map_err(|e| e.within(&format!("contacts[{i}]")))?);
        }
        if kind != PartyKind::Platform && (!input.domains.is_empty() || !input.handles.is_empty()) {
            return Err(Error::invalid(
                "domains",
                "only a platform party operates domains and handles",
            ));
        }
        if input.domains.len() > MAX_DOMAINS || input.handles.len() > MAX_DOMAINS {
            return Err(Error::invalid(
                "domains",
                format!("at most {MAX_DOMAINS} domains and {MAX_DOMAINS} handles"),
            ));
        }
        let mut domains = Vec::with_capacity(input.domains.len());
        for (i, d) in input.domains.iter().enumerate() {
            let d = DomainName::parse(d).map_err(|e| e.within(&format!("domains[{i}]")))?;
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        let mut handles = Vec::with_capacity(input.handles.len());
        for (i, h) in input.handles.iter().enumerate() {
            let h = Handle::parse(h).map_err(|e| e.within(&format!("handles[{i}]")))?;
            if !handles.iter().any(|x: &String| x == h.as_str()) {
                handles.push(h.as_str().to_owned());
            }
        }
        Ok(NewParty {
            kind,
            name,
            contacts,
            domains,
            handles,
        })
    }
}

fn parse_contact(c: Contact) -> Result<Contact> {
    let opt = |field: &str, v: Option<String>, max: usize| -> Result<Option<String>> {
        v.map(|s| bounded_text(field, &s, 1, max)).transpose()
    };
    let email = opt("email", c.email, 254)?;
    if let Some(e) = &email {
        let ok = e
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && DomainName::parse(domain).is_ok())
            && !e.contains(char::is_whitespace);
        if !ok {
            return Err(Error::invalid("email", "not an email address"));
        }
    }
    let out = Contact {
        name: opt("name", c.name, 200)?,
        email,
        phone: opt("phone", c.phone, 40)?,
        role: opt("role", c.role, 64)?,
    };
    if out.email.is_none() && out.phone.is_none() {
        return Err(Error::invalid("", "a contact needs an email or a phone"));
    }
    Ok(out)
}

/// Trimmed text between `min` and `max` characters with no control
/// characters other than newlines and tabs.
pub fn bounded_text(field: &str, s: &str, min: usize, max: usize) -> Result<String> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min {
        return Err(Error::invalid(
            field,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("needs at least {min} characters")
            },
        ));
    }
    if n > max {
        return Err(Error::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str) -> PartyInput {
        PartyInput {
            kind: kind.into(),
            name: "Example".into(),
            contacts: vec![],
            domains: vec![],
            handles: vec![],
        }
    }

    #[test]
    fn platform_domains_are_parsed_and_deduplicated() {
        let mut p = input("platform");
        p.domains = vec!["T.me".into(), "t.me.".into(), "telegram.org".into()];
        let parsed = NewParty::parse(p).expect("valid");
        assert_eq!(parsed.domains.len(), 2);
    }

    #[test]
    fn refuses_bad_parties() {
        assert!(NewParty::parse(input("government")).is_err());
        let mut p = input("isp");
        p.domains = vec!["example.net".into()];
        assert!(NewParty::parse(p).is_err());
        let mut p = input("platform");
        p.name = "   ".into();
        assert!(NewParty::parse(p).is_err());
        let mut p = input("platform");
        p.contacts = vec![Contact {
            name: None,
            email: Some("not-an-email".into()),
            phone: None,
            role: None,
        }];
        let err = NewParty::parse(p).expect_err("bad email");
        assert_eq!(err.to_string(), "contacts[0].email: not an email address");
    }
}
