//! How far a credential reaches inside its project. A secret key reaches
//! everything; a publishable key is public (it ships in browsers), so it
//! reaches only records no session depends on: organizations without an
//! owner, users without a session identity, and what lies between them.
//! Nothing it does can give a session access, take access away, or change
//! what decides access.

use super::identifier::IdentifierKey;
use super::{Organization, User};
use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A secret key, or a session acting within its own rights.
    Project,
    /// A publishable key: only unclaimed records.
    Unclaimed,
}

impl Scope {
    pub fn is_unclaimed(self) -> bool {
        self == Scope::Unclaimed
    }

    /// Refuses identifiers of source `session` (they decide who a session
    /// is) under a publishable key.
    pub fn check_identifiers<'a>(
        self,
        keys: impl IntoIterator<Item = &'a IdentifierKey>,
    ) -> Result<(), Error> {
        if self.is_unclaimed() && keys.into_iter().any(IdentifierKey::is_session) {
            return Err(Error::Forbidden(
                "identifiers of source \"session\" decide who a session is: only a secret key or the session itself writes them".into(),
            ));
        }
        Ok(())
    }

    pub fn check_organization(self, org: &Organization) -> Result<(), Error> {
        if self.is_unclaimed() && org.is_claimed() {
            return Err(owned_organization());
        }
        Ok(())
    }

    pub fn check_user(self, user: &User) -> Result<(), Error> {
        if self.is_unclaimed() && user.has_session_identity() {
            return Err(session_user());
        }
        Ok(())
    }
}

/// The refusal for an organization a session owns.
pub fn owned_organization() -> Error {
    Error::Forbidden(
        "the organization has an owner: a publishable key cannot change it; use a secret key or an owner's session".into(),
    )
}

/// The refusal for a user that signs in with sessions.
pub fn session_user() -> Error {
    Error::Forbidden(
        "the user signs in with sessions: a publishable key cannot change them; use a secret key"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishable_keys_do_not_write_session_identifiers() {
        let session = IdentifierKey::session("alice").unwrap();
        let plain = IdentifierKey::parse(None, "alice").unwrap();
        assert!(Scope::Unclaimed.check_identifiers([&plain]).is_ok());
        assert!(Scope::Unclaimed
            .check_identifiers([&plain, &session])
            .is_err());
        assert!(Scope::Project.check_identifiers([&session]).is_ok());
    }
}
