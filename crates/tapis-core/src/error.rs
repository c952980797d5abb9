/// Everything that can be wrong with input or with a requested change.
///
/// Each variant names the field or rule at fault so that the edge can turn it
/// into a precise client error without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value does not parse; `field` says which one.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A state machine refuses the transition.
    #[error("cannot {action} {} {entity} that is {state}", article(.entity))]
    IllegalTransition {
        entity: &'static str,
        state: String,
        action: String,
    },
    /// Someone may not perform an action; `who` names them as the
    /// message should ("role platform_agent", "the person Siti Rahma").
    #[error("{who} may not {action}")]
    Forbidden { who: String, action: String },
}

/// "a" or "an" before an entity's name.
fn article(entity: &str) -> &'static str {
    if entity.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefix the field path, e.g. `items[2]` + `value` → `items[2].value`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Error::Invalid { field, message } => Error::Invalid {
                field: if field.is_empty() {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{field}")
                },
                message,
            },
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
