//! People behind credentials, and the four-eyes rule over them.
//!
//! Every token belongs to a named person or is a machine credential (no
//! person). Four eyes is about people, not credentials: one person holding
//! an officer token and an approver token is still one person, so the rule
//! compares the normalised person named on each token, never token ids or
//! free-text labels. A machine credential may neither propose nor approve
//! anything that needs a second person.

use serde::{Deserialize, Serialize};

use crate::party::bounded_text;
use crate::{Error, Result};

/// A person's name, normalised so that spellings of one name compare
/// equal: trimmed, case-folded (Unicode lowercase) and with runs of inner
/// whitespace collapsed to one space ("J.  Doe" and "j. doe" are one person).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Person(String);

impl Person {
    pub fn parse(raw: &str) -> Result<Person> {
        let text = bounded_text("person", raw, 1, 200)?;
        if text.contains(['\n', '\r', '\t']) {
            // collapsed below anyway, but a name on several lines is a mistake
            return Err(Error::invalid("person", "a name is one line"));
        }
        let folded = text.to_lowercase();
        Ok(Person(
            folded.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    }

    /// Rebuild from a stored, already normalised value.
    pub fn from_stored(s: &str) -> Result<Person> {
        let p = Person::parse(s)?;
        if p.0 != s {
            return Err(Error::invalid("person", "stored person is not normalised"));
        }
        Ok(p)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Acts that a person must do and a machine credential may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalAct {
    ProposeOrder,
    ApproveOrder,
    DecideEscalation,
    ReviewDispute,
    DecideAppeal,
}

impl PersonalAct {
    fn as_str(self) -> &'static str {
        match self {
            PersonalAct::ProposeOrder => "propose blocking orders",
            PersonalAct::ApproveOrder => "approve blocking orders",
            PersonalAct::DecideEscalation => "decide escalations",
            PersonalAct::ReviewDispute => "review disputes",
            PersonalAct::DecideAppeal => "review appeals",
        }
    }
}

/// A machine credential (no person) may not do `act`.
pub fn require_person(person: Option<&Person>, act: PersonalAct) -> Result<&Person> {
    person.ok_or_else(|| Error::Forbidden {
        who: "a machine credential (a token without a person)".into(),
        action: format!(
            "{} (only a named person may; create a token with \"person\")",
            act.as_str()
        ),
    })
}

/// Four eyes: may `approver` approve what `proposer` proposed? The same
/// person never may, whatever tokens either used; a machine credential
/// never approves. A proposal made before people were recorded (`None`)
/// is compared by token id only.
pub fn four_eyes(
    proposer: Option<&Person>,
    proposer_token: &str,
    approver: Option<&Person>,
    approver_token: &str,
) -> Result<()> {
    let approver = require_person(approver, PersonalAct::ApproveOrder)?;
    let same = proposer_token == approver_token || proposer == Some(approver);
    if same {
        return Err(Error::Forbidden {
            who: format!("the person {approver}"),
            action: "approve what they proposed (four eyes: a second person must approve)".into(),
        });
    }
    Ok(())
}

/// A second person: `reviewer` may review a dispute or an appeal only if
/// they are none of the people `involved` in what is questioned (who
/// issued the notice, who proposed or approved the order), compared as
/// people, as [`four_eyes`] does; an involvement recorded before people
/// were (`None`) is compared by token id. A machine credential never
/// reviews.
pub fn not_involved(
    involved: &[(Option<&Person>, &str)],
    reviewer: Option<&Person>,
    reviewer_token: &str,
    act: PersonalAct,
) -> Result<()> {
    let reviewer = require_person(reviewer, act)?;
    let same = involved
        .iter()
        .any(|(p, token)| *token == reviewer_token || *p == Some(reviewer));
    if same {
        return Err(Error::Forbidden {
            who: format!("the person {reviewer}"),
            action: format!(
                "{} of what they issued, proposed or approved (a second person must review)",
                act.as_str()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Person {
        Person::parse(s).expect("person")
    }

    #[test]
    fn spellings_of_one_name_are_one_person() {
        assert_eq!(p("J. Doe"), p("  j.   doe "));
        assert_eq!(p("ÉLODIE Martin"), p("élodie martin"));
        assert_ne!(p("J. Doe"), p("J. Doe (approver hat)"));
        assert_eq!(p("J. Doe").as_str(), "j. doe");
        assert!(Person::parse("   ").is_err());
        assert!(Person::parse("a\nb").is_err());
        assert!(Person::from_stored("J. Doe").is_err());
        assert_eq!(Person::from_stored("j. doe"), Ok(p("J. Doe")));
    }

    #[test]
    fn four_eyes_compares_people() {
        let doe = p("J. Doe");
        let roe = p("R. Roe");
        // table: (proposer, proposer token, approver, approver token, allowed)
        let table = [
            (Some(&doe), "t1", Some(&roe), "t2", true),
            (Some(&doe), "t1", Some(&p("j. doe")), "t2", false),
            (Some(&doe), "t1", Some(&doe), "t1", false),
            (Some(&doe), "t1", None, "t2", false),
            (None, "t1", Some(&roe), "t2", true),
            (None, "t1", Some(&roe), "t1", false),
        ];
        for (proposer, pt, approver, at, allowed) in table {
            assert_eq!(
                four_eyes(proposer, pt, approver, at).is_ok(),
                allowed,
                "{proposer:?} {pt} {approver:?} {at}"
            );
        }
    }

    #[test]
    fn reviews_need_someone_not_involved() {
        let doe = p("J. Doe");
        let roe = p("R. Roe");
        let act = PersonalAct::DecideAppeal;
        let involved = [(Some(&doe), "t1"), (Some(&roe), "t2")];
        assert!(not_involved(&involved, Some(&p("A. Third")), "t3", act).is_ok());
        // the proposer and the approver, by person whatever the token
        assert!(not_involved(&involved, Some(&p("j. doe")), "t9", act).is_err());
        assert!(not_involved(&involved, Some(&roe), "t9", act).is_err());
        // an old record without a person: by token
        assert!(not_involved(&[(None, "t1")], Some(&roe), "t1", act).is_err());
        assert!(not_involved(&[(None, "t1")], Some(&roe), "t2", act).is_ok());
        // a machine never reviews
        assert!(not_involved(&[], None, "t3", act).is_err());
        let e = not_involved(&involved, Some(&doe), "t1", PersonalAct::ReviewDispute)
            .expect_err("the issuer");
        assert_eq!(
            e.to_string(),
            "the person j. doe may not review disputes of what they issued, proposed or approved (a second person must review)"
        );
    }

    #[test]
    fn refusals_read_as_sentences() {
        let siti = p("Siti Rahma");
        let e = four_eyes(Some(&siti), "t1", Some(&siti), "t2").expect_err("one person");
        assert_eq!(
            e.to_string(),
            "the person siti rahma may not approve what they proposed (four eyes: a second person must approve)"
        );
        let e = require_person(None, PersonalAct::DecideEscalation).expect_err("a machine");
        assert!(
            e.to_string().starts_with(
                "a machine credential (a token without a person) may not decide escalations"
            ),
            "{e}"
        );
        let e = crate::role::may_issue_token(
            crate::role::Role::Admin,
            crate::PartyId::new(),
            crate::PartyId::new(),
            crate::party::PartyKind::Platform,
            crate::role::Role::PlatformAgent,
        );
        if let Err(e) = e {
            let m = e.to_string();
            assert!(
                m.starts_with("role admin may not create tokens for a platform party"),
                "{m}"
            );
            assert!(!m.contains('\\') && !m.contains("  "), "{m}");
        } else {
            panic!("the authority's admin may not mint a platform's token");
        }
    }
}
