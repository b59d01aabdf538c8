//! The organization domain: what an organization is and how changes apply to
//! it. Knows neither HTTP nor DynamoDB; every dialect maps onto these types.

pub mod data;
pub mod organization;

pub use data::{merge_data, Data};
pub use organization::{
    Identifier, IdentifierKey, IdentifierSpec, Organization, OrganizationUpsert, SystemEvent,
};
