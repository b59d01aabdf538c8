//! A validated create-or-update request for a record named by external
//! identifiers (an organization or a user), whatever dialect it came from.

use serde_json::Value;

use super::data::{check_limits, merge_data, Data};
use super::identifier::{validate_identifiers, IdentifierSpec};
use crate::error::Error;

pub const MAX_NAME_LEN: usize = 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct ProfileUpsert {
    identifiers: Vec<IdentifierSpec>,
    name: Option<String>,
    data: Option<Data>,
}

impl ProfileUpsert {
    pub fn new(
        identifiers: Vec<IdentifierSpec>,
        name: Option<String>,
        data: Option<Data>,
    ) -> Result<Self, Error> {
        let identifiers = validate_identifiers(identifiers)?;
        if let Some(name) = &name {
            if name.chars().count() > MAX_NAME_LEN {
                return Err(Error::invalid(format!(
                    "name is longer than {MAX_NAME_LEN} characters"
                )));
            }
        }
        if let Some(data) = &data {
            check_limits("data", data)?;
        }
        Ok(Self {
            identifiers,
            name,
            data,
        })
    }

    pub fn identifiers(&self) -> &[IdentifierSpec] {
        &self.identifiers
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn data(&self) -> Option<&Data> {
        self.data.as_ref()
    }

    /// `data` as a new record starts with it (`null` values dropped).
    pub(crate) fn initial_data(&self) -> Data {
        let mut data = Data::new();
        if let Some(patch) = &self.data {
            merge_data(&mut data, patch);
        }
        data
    }
}

/// Shallow-merges `patch` into `data`; returns the keys that changed (with
/// their new value, `null` for removed ones), or `None` if nothing did.
pub(crate) fn merge_changes(
    data: &mut Data,
    patch: Option<&Data>,
    what: &str,
) -> Result<Option<Data>, Error> {
    let Some(patch) = patch else { return Ok(None) };
    let before = data.clone();
    if !merge_data(data, patch) {
        return Ok(None);
    }
    check_limits(what, data)?;
    let changed = patch
        .keys()
        .filter(|k| before.get(*k) != data.get(*k))
        .map(|k| (k.clone(), data.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    Ok(Some(changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_changes_reports_only_what_changed() {
        let mut data = json!({"plan": "free", "csm": "ann"})
            .as_object()
            .cloned()
            .unwrap();
        let patch = json!({"plan": "free", "csm": null, "arr": 1})
            .as_object()
            .cloned()
            .unwrap();
        let changed = merge_changes(&mut data, Some(&patch), "data")
            .unwrap()
            .unwrap();
        assert_eq!(Value::Object(changed), json!({"csm": null, "arr": 1}));
        assert_eq!(
            merge_changes(&mut data, Some(&patch), "data").unwrap(),
            None
        );
        assert_eq!(merge_changes(&mut data, None, "data").unwrap(), None);
    }

    #[test]
    fn merged_data_must_stay_within_limits() {
        let mut data: Data = (0..super::super::data::MAX_DATA_KEYS)
            .map(|i| (format!("k{i}"), json!(1)))
            .collect();
        let patch = json!({"one_more": 1}).as_object().cloned().unwrap();
        assert!(merge_changes(&mut data, Some(&patch), "data").is_err());
    }
}
