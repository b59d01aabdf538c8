//! The domain: organizations, users, memberships and how changes apply to
//! them. Knows neither HTTP nor DynamoDB; every dialect maps onto these.

pub mod address;
pub mod changes;
pub mod cleanup;
pub mod crm;
pub mod data;
pub mod domains;
pub mod event;
pub mod features;
pub mod identifier;
pub mod membership;
pub mod organization;
pub mod profile;
pub mod schedule;
pub mod scope;
pub mod segment;
pub mod tenant;
pub mod user;

pub use data::{merge_data, Data};
pub use identifier::{Identifier, IdentifierKey, IdentifierSpec};
pub use membership::Membership;
pub use organization::Organization;
pub use profile::ProfileUpsert;
pub use scope::Scope;
pub use user::User;

/// An event the service itself emits, written in the same transaction as
/// the change it describes; built by [`event`], which names them all.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemEvent {
    pub name: &'static str,
    pub data: Data,
}
