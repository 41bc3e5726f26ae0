//! Accounts: who can log in, with which role and skills.

use engine::{Millis, Skill};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    Worker,
    Ops,
}

impl Role {
    /// Every role, in the order of [`Role::as_str`]'s names.
    pub const ALL: [Role; 3] = [Role::Resident, Role::Worker, Role::Ops];

    /// The one parser of a role name (API bodies, the CLI).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::Worker => "worker",
            Role::Ops => "ops",
        }
    }
}

/// A user. The password is stored only as an argon2 PHC string, hashed by
/// the gateway before it gets here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// Unique across accounts; the gateway normalises it (trimmed, lower case).
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub name: String,
    pub skills: Vec<Skill>,
    pub created_at: Millis,
}
