//! The CRM dialect's writes of organizations (its fields on the shared
//! record); its list is the store's organization list (`org_index.rs`),
//! its notes are in `notes.rs`.

use uuid::Uuid;

use super::Store;

use crate::domain::crm::CrmChange;
use crate::domain::organization::AccountsProfile;
use crate::domain::{Organization, User};
use crate::error::Error;

impl Store {
    /// A user by id (one read); `None` when the project has no such user.
    pub async fn get_user(&self, project: Uuid, id: Uuid) -> Result<Option<User>, Error> {
        self.get_record::<User>(project, id).await
    }

    /// Creates an organization named `title` with a CRM write applied (one
    /// transaction, as every creation: record, count, anniversary, event,
    /// index entries, and the session user as owner when there is one).
    /// The caller has validated the change.
    pub async fn create_crm_organization(
        &self,
        project: Uuid,
        title: &str,
        change: &CrmChange,
        owner_last_name: Option<String>,
        owner: Option<Uuid>,
    ) -> Result<Organization, Error> {
        self.create_organization_with(project, title, AccountsProfile::default(), owner, |org| {
            change.apply(org, owner_last_name.clone());
        })
        .await
    }

    /// Applies a validated CRM write to an organization (one read, one
    /// transaction).
    pub async fn change_crm_organization(
        &self,
        project: Uuid,
        id: Uuid,
        change: &CrmChange,
        owner_last_name: Option<String>,
    ) -> Result<Organization, Error> {
        self.change_organization(
            project,
            id,
            |org, _| Ok(change.apply(org, owner_last_name.clone()).then(Vec::new)),
            |_| None,
        )
        .await
    }
}
