//! Identifiers, time and skills: the small value types every other module uses.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The engine never reads a clock: every
/// command carries the caller's `now`, so tests drive time by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    pub fn plus_secs(self, s: u64) -> Millis {
        Millis(self.0.saturating_add((s as i64).saturating_mul(1000)))
    }
    pub fn minus_secs(self, s: u64) -> Millis {
        Millis(self.0.saturating_sub((s as i64).saturating_mul(1000)))
    }
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s))
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A worker's user id. Ties in matching go to the lowest id (byte order).
    WorkerId
);
id_type!(
    /// A job id, chosen by the caller (the gateway) so it can be logged before use.
    JobId
);
id_type!(
    /// A resident's user id.
    ResidentId
);

/// A skill name, `[a-z0-9_-]{1,32}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Skill(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("skill must match [a-z0-9_-]{{1,32}}")]
pub struct BadSkill;

impl Skill {
    pub fn new(s: &str) -> Result<Skill, BadSkill> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Skill(Arc::from(s)))
        } else {
            Err(BadSkill)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Skill {
    type Error = BadSkill;
    fn try_from(s: String) -> Result<Self, BadSkill> {
        Skill::new(&s)
    }
}
impl From<Skill> for String {
    fn from(s: Skill) -> String {
        s.0.to_string()
    }
}
impl fmt::Debug for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
impl fmt::Display for Skill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skill_pattern() {
        assert!(Skill::new("plumbing").is_ok());
        assert!(Skill::new("hvac_2-x").is_ok());
        assert!(Skill::new(&"a".repeat(32)).is_ok());
        assert!(Skill::new(&"a".repeat(33)).is_err());
        assert!(Skill::new("").is_err());
        assert!(Skill::new("Plumbing").is_err());
        assert!(Skill::new("pl umb").is_err());
        assert!(serde_json::from_str::<Skill>("\"BAD\"").is_err());
    }
}
