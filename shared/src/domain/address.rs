//! An organization's postal and tax address.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// ISO 3166-1 alpha-2: every officially assigned code.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

const MAX_FIELD_LEN: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub postal_code: String,
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id_type: Option<String>,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A field of a change: absent (keep), `null` (clear), or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Change<T = String> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

/// Every field of an address change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AddressChange {
    pub line1: Change,
    pub line2: Change,
    pub city: Change,
    pub state: Change,
    pub postal_code: Change,
    pub country: Change,
    pub tax_id: Change,
    pub tax_id_type: Change,
}

/// An ISO 3166-1 alpha-2 code, upper-cased.
pub fn country(code: &str) -> Result<String, Error> {
    let upper = code.trim().to_ascii_uppercase();
    if upper.len() == 2 && COUNTRIES.split(' ').any(|c| c == upper) {
        Ok(upper)
    } else {
        Err(Error::invalid(format!(
            "country `{code}` is not an ISO 3166-1 alpha-2 code (e.g. \"US\", \"DE\")"
        )))
    }
}

fn required(field: &str, change: &Change, current: Option<&str>) -> Result<String, Error> {
    let value = match change {
        Change::Set(value) => value.trim().to_owned(),
        Change::Keep => current.map(str::to_owned).unwrap_or_default(),
        Change::Clear => {
            return Err(Error::invalid(format!(
                "{field} is required and cannot be null"
            )))
        }
    };
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} is required")));
    }
    bounded(field, value)
}

fn optional(
    field: &str,
    change: &Change,
    current: Option<&String>,
) -> Result<Option<String>, Error> {
    match change {
        Change::Keep => Ok(current.cloned()),
        Change::Clear => Ok(None),
        Change::Set(value) if value.trim().is_empty() => Ok(None),
        Change::Set(value) => bounded(field, value.trim().to_owned()).map(Some),
    }
}

fn bounded(field: &str, value: String) -> Result<String, Error> {
    if value.chars().count() > MAX_FIELD_LEN {
        return Err(Error::invalid(format!(
            "{field} is longer than {MAX_FIELD_LEN} characters"
        )));
    }
    Ok(value)
}

impl Address {
    /// The address after `change`: a new one when `current` is `None` (then
    /// `city`, `country`, `line1`, `postal_code` are required).
    pub fn apply(
        current: Option<&Address>,
        organization_id: Uuid,
        change: &AddressChange,
        now: &str,
    ) -> Result<Address, Error> {
        let country_code = required(
            "country",
            &change.country,
            current.map(|a| a.country.as_str()),
        )?;
        Ok(Address {
            id: current.map(|a| a.id).unwrap_or_else(crate::ids::new_id),
            organization_id,
            line1: required("line1", &change.line1, current.map(|a| a.line1.as_str()))?,
            line2: optional(
                "line2",
                &change.line2,
                current.and_then(|a| a.line2.as_ref()),
            )?,
            city: required("city", &change.city, current.map(|a| a.city.as_str()))?,
            state: optional(
                "state",
                &change.state,
                current.and_then(|a| a.state.as_ref()),
            )?,
            postal_code: required(
                "postal_code",
                &change.postal_code,
                current.map(|a| a.postal_code.as_str()),
            )?,
            country: country(&country_code)?,
            tax_id: optional(
                "tax_id",
                &change.tax_id,
                current.and_then(|a| a.tax_id.as_ref()),
            )?,
            tax_id_type: optional(
                "tax_id_type",
                &change.tax_id_type,
                current.and_then(|a| a.tax_id_type.as_ref()),
            )?,
            version: current.map(|a| a.version + 1).unwrap_or(1),
            created_at: current
                .map(|a| a.created_at.clone())
                .unwrap_or_else(|| now.to_owned()),
            updated_at: now.to_owned(),
        })
    }
}

/// Absent (with `#[serde(default)]`) keeps, `null` clears, a value sets.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Change<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Change::Set(value),
            None => Change::Clear,
        })
    }
}

impl<T> Change<T> {
    /// What a full replace makes of an omitted field: cleared.
    pub fn or_clear(self) -> Self {
        match self {
            Change::Keep => Change::Clear,
            other => other,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Change<U> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(v) => Change::Set(f(v)),
        }
    }

    /// `map` with a fallible conversion.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Change<U>, E> {
        Ok(match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(v) => Change::Set(f(v)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &str) -> Change {
        Change::Set(v.into())
    }

    fn full() -> AddressChange {
        AddressChange {
            line1: set("1 Main St"),
            city: set("Berlin"),
            postal_code: set("10115"),
            country: set("de"),
            tax_id: set("DE123"),
            state: set("BE"),
            ..Default::default()
        }
    }

    #[test]
    fn countries_are_iso_alpha_2() {
        assert_eq!(country("us").unwrap(), "US");
        assert_eq!(COUNTRIES.split(' ').count(), 249);
        for bad in ["XX", "USA", "", "U", "EU"] {
            assert!(country(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_address_needs_the_required_fields() {
        let now = "2026-01-01T00:00:00.000Z";
        let address = Address::apply(None, Uuid::nil(), &full(), now).unwrap();
        assert_eq!(address.country, "DE");
        let mut missing = full();
        missing.city = Change::Keep;
        assert!(Address::apply(None, Uuid::nil(), &missing, now).is_err());
    }

    #[test]
    fn null_clears_optional_fields_and_required_ones_cannot_be_cleared() {
        let now = "2026-01-01T00:00:00.000Z";
        let address = Address::apply(None, Uuid::nil(), &full(), now).unwrap();
        let change = AddressChange {
            tax_id: Change::Clear,
            state: Change::Clear,
            city: set("Hamburg"),
            ..Default::default()
        };
        let changed = Address::apply(Some(&address), Uuid::nil(), &change, now).unwrap();
        assert_eq!(
            (changed.tax_id, changed.state, changed.city.as_str()),
            (None, None, "Hamburg")
        );
        assert_eq!(changed.line1, "1 Main St");
        assert_eq!(changed.version, 2);
        let clear_city = AddressChange {
            city: Change::Clear,
            ..Default::default()
        };
        assert!(Address::apply(Some(&address), Uuid::nil(), &clear_city, now).is_err());
    }
}
