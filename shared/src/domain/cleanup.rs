//! Cleanup of deleted organizations across services (seed 003's
//! `OrganizationToCleanup` and `OrganizationCleanupStatus`): the record a
//! deletion leaves, the reports services file, and when it is complete.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// The service name this service reports under.
pub const OWN_SERVICE: &str = "organizations";

/// Most operations in one report, and the longest service name.
pub const MAX_OPERATIONS: usize = 1_000;
pub const MAX_SERVICE_NAME: usize = 64;

/// A deleted organization whose data is being cleaned up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrganizationToCleanup {
    pub org_id: String,
    #[schema(format = DateTime)]
    pub deleted_at: String,
    pub deleted_by: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub extra_info: Option<Value>,
}

/// What a deletion sends through the cleanup queue (the
/// `organization.deleted` announcement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    pub name: String,
    pub project_id: uuid::Uuid,
    pub org_id: uuid::Uuid,
    pub deleted_at: String,
    pub deleted_by: String,
}

/// A step of a deleted organization's purge on the cleanup queue: the
/// deletion's announcement (a [`Deletion`], read without `step`: it runs
/// whatever step is next), a step's continuation, or the sweep's
/// announcement of a purge that lost its message (with the step it is at).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurgeMessage {
    pub project_id: uuid::Uuid,
    pub org_id: uuid::Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
}

/// One service's report on what it cleaned up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrganizationCleanupStatus {
    pub org_id: String,
    pub service_name: String,
    #[serde(default)]
    pub operations: Vec<Operation>,
}

/// The services whose reports make a cleanup complete: the configured
/// ones (`CLEANUP_SERVICES`, comma-separated), always with this service.
pub fn expected_services(configured: Option<&str>) -> BTreeSet<String> {
    let mut services: BTreeSet<String> = configured
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    services.insert(OWN_SERVICE.to_owned());
    services
}

/// Complete when every expected service has reported (reports from other
/// services are kept but do not count).
pub fn is_complete<'a>(
    expected: &BTreeSet<String>,
    reported: impl IntoIterator<Item = &'a str>,
) -> bool {
    let reported: BTreeSet<&str> = reported.into_iter().collect();
    expected.iter().all(|s| reported.contains(s.as_str()))
}

pub fn validate_service_name(name: &str) -> Result<(), Error> {
    let valid = (1..=MAX_SERVICE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "service name {name:?} must be 1-{MAX_SERVICE_NAME} letters, digits or _ - ."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_when_every_expected_service_reported() {
        let expected = expected_services(Some(" billing, ,mail "));
        assert_eq!(
            expected.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["billing", "mail", "organizations"]
        );
        assert!(!is_complete(&expected, ["organizations", "billing"]));
        assert!(!is_complete(
            &expected,
            ["organizations", "billing", "unknown"]
        ));
        assert!(is_complete(
            &expected,
            ["mail", "organizations", "billing", "unknown"]
        ));
        let own = expected_services(None);
        assert!(is_complete(&own, ["organizations"]));
        assert!(!is_complete(&own, []));
    }

    #[test]
    fn service_names_are_checked() {
        assert!(validate_service_name("billing-v2.eu").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(validate_service_name(bad).is_err(), "{bad:?}");
        }
    }
}
