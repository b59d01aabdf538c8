//! The tenant dialect's own organization fields (seed 003, epilot's
//! `Organization`), its settings, and what a change to them must satisfy.
//! `name` is the organization's shared name.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::address::Change;
use super::Organization;
use crate::error::Error;

/// Longest free-text field (the signature).
pub const MAX_TEXT: usize = 10_000;
/// Longest short field (email, phone, website, address parts, …).
pub const MAX_SHORT: usize = 2_048;
/// Most tags.
pub const MAX_TAGS: usize = 100;
/// Largest `style` object, as JSON.
pub const MAX_STYLE_BYTES: usize = 16 * 1024;
/// Largest setting value, as JSON.
pub const MAX_SETTING_BYTES: usize = 64 * 1024;
/// Longest setting key.
pub const MAX_SETTING_KEY: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_number: Option<String>,
}

/// Where an uploaded logo lives (S3 keys under the organization's prefix).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredLogo {
    pub key: String,
    pub thumbnail_key: String,
    pub content_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<TenantAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_production_org_id: Option<String>,
    /// A logo URL set directly (an uploaded logo takes precedence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_thumbnail_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<StoredLogo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_unlicensed_org: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_user_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

pub const ORGANIZATION_USES: &[&str] = &["Production", "Sandbox"];
pub const TYPES: &[&str] = &["Vendor", "Partner"];

/// A partial update (`PATCH /v2/organization/{org_id}`): absent fields
/// stay, `null` clears.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantChange {
    pub name: Change<String>,
    pub email: Change<String>,
    pub phone: Change<String>,
    pub website: Change<String>,
    pub address: Change<TenantAddress>,
    pub organization_use: Change<String>,
    pub parent_production_org_id: Change<String>,
    pub logo_url: Change<String>,
    pub logo_thumbnail_url: Change<String>,
    pub signature: Change<String>,
    pub is_unlicensed_org: Change<bool>,
    pub style: Change<serde_json::Map<String, Value>>,
    pub kind: Change<String>,
    pub symbol: Change<String>,
    pub pricing_tier: Change<String>,
    pub free_user_limit: Change<f64>,
    pub tags: Change<Vec<String>>,
}

fn too_long(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        return Err(Error::invalid(format!(
            "{field} is too long (at most {max} characters)"
        )));
    }
    Ok(())
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Error> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must be one of {}",
            allowed.join(", ")
        )))
    }
}

fn apply<T: Clone>(field: &mut Option<T>, change: &Change<T>) {
    match change {
        Change::Keep => {}
        Change::Clear => *field = None,
        Change::Set(v) => *field = Some(v.clone()),
    }
}

/// Whether `value` is an absolute http(s) URL: what a browser may load or
/// link to (`javascript:` and `data:` URLs run or carry code).
fn http_url(field: &str, value: &str) -> Result<(), Error> {
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let clean = !value.chars().any(|c| c.is_control() || c.is_whitespace());
    match host {
        Some(host) if !host.is_empty() && clean => Ok(()),
        _ => Err(Error::invalid(format!(
            "{field} must be an http:// or https:// URL"
        ))),
    }
}

impl TenantChange {
    /// The fields this change sets that decide price or entitlement: only
    /// a secret key changes them.
    pub fn entitlement_fields(&self) -> Vec<&'static str> {
        [
            ("type", self.kind.is_keep()),
            ("pricing_tier", self.pricing_tier.is_keep()),
            ("free_user_limit", self.free_user_limit.is_keep()),
            ("is_unlicensed_org", self.is_unlicensed_org.is_keep()),
            ("organization_use", self.organization_use.is_keep()),
            (
                "parent_production_org_id",
                self.parent_production_org_id.is_keep(),
            ),
        ]
        .into_iter()
        .filter(|(_, keep)| !keep)
        .map(|(field, _)| field)
        .collect()
    }

    pub fn validate(&self) -> Result<(), Error> {
        match &self.name {
            Change::Clear => return Err(Error::invalid("name cannot be null")),
            Change::Set(n) if n.trim().is_empty() => {
                return Err(Error::invalid("name must not be empty"))
            }
            Change::Set(n) => too_long("name", n, super::profile::MAX_NAME_LEN)?,
            Change::Keep => {}
        }
        if let Change::Set(email) = &self.email {
            super::organization::validate_email("email", email)?;
        }
        for (field, value) in [
            ("phone", &self.phone),
            ("website", &self.website),
            ("parent_production_org_id", &self.parent_production_org_id),
            ("logo_url", &self.logo_url),
            ("logo_thumbnail_url", &self.logo_thumbnail_url),
            ("symbol", &self.symbol),
            ("pricing_tier", &self.pricing_tier),
        ] {
            if let Change::Set(v) = value {
                too_long(field, v, MAX_SHORT)?;
            }
        }
        for (field, value) in [
            ("website", &self.website),
            ("logo_url", &self.logo_url),
            ("logo_thumbnail_url", &self.logo_thumbnail_url),
        ] {
            if let Change::Set(url) = value {
                http_url(field, url)?;
            }
        }
        if let Change::Set(s) = &self.signature {
            too_long("signature", s, MAX_TEXT)?;
        }
        if let Change::Set(a) = &self.address {
            for (field, value) in [
                ("address.country", &a.country),
                ("address.city", &a.city),
                ("address.postal_code", &a.postal_code),
                ("address.street", &a.street),
                ("address.street_number", &a.street_number),
            ] {
                if let Some(v) = value {
                    too_long(field, v, MAX_SHORT)?;
                }
            }
        }
        if let Change::Set(u) = &self.organization_use {
            one_of("organization_use", u, ORGANIZATION_USES)?;
        }
        if let Change::Set(t) = &self.kind {
            one_of("type", t, TYPES)?;
        }
        if let Change::Set(limit) = &self.free_user_limit {
            if !limit.is_finite() || *limit < 0.0 || limit.fract() != 0.0 {
                return Err(Error::invalid(
                    "free_user_limit must be a whole number from 0",
                ));
            }
        }
        if let Change::Set(tags) = &self.tags {
            if tags.len() > MAX_TAGS {
                return Err(Error::invalid(format!("at most {MAX_TAGS} tags")));
            }
            for tag in tags {
                too_long("a tag", tag, 255)?;
            }
        }
        if let Change::Set(style) = &self.style {
            if serde_json::to_vec(style).map_or(0, |b| b.len()) > MAX_STYLE_BYTES {
                return Err(Error::invalid(format!(
                    "style is larger than {MAX_STYLE_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Applies the change; whether anything changed.
    pub fn apply(&self, org: &mut Organization) -> bool {
        let before = (org.name.clone(), org.tenant.clone());
        if let Change::Set(name) = &self.name {
            org.name = Some(name.trim().to_owned());
        }
        let t = org.tenant.get_or_insert_with(Default::default);
        apply(&mut t.email, &self.email);
        apply(&mut t.phone, &self.phone);
        apply(&mut t.website, &self.website);
        apply(&mut t.address, &self.address);
        apply(&mut t.organization_use, &self.organization_use);
        apply(
            &mut t.parent_production_org_id,
            &self.parent_production_org_id,
        );
        apply(&mut t.logo_url, &self.logo_url);
        apply(&mut t.logo_thumbnail_url, &self.logo_thumbnail_url);
        apply(&mut t.signature, &self.signature);
        apply(&mut t.is_unlicensed_org, &self.is_unlicensed_org);
        apply(&mut t.style, &self.style);
        apply(&mut t.kind, &self.kind);
        apply(&mut t.symbol, &self.symbol);
        apply(&mut t.pricing_tier, &self.pricing_tier);
        apply(&mut t.free_user_limit, &self.free_user_limit);
        apply(&mut t.tags, &self.tags);
        if before.1.is_none() && org.tenant.as_ref() == Some(&TenantProfile::default()) {
            org.tenant = None;
        }
        (org.name.clone(), org.tenant.clone()) != before
    }
}

/// Checks a setting key: 1–128 characters of letters, digits and `_ - . :`.
pub fn validate_setting_key(key: &str) -> Result<(), Error> {
    let valid = (1..=MAX_SETTING_KEY).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "setting key {key:?} must be 1-{MAX_SETTING_KEY} letters, digits or _ - . :"
        )))
    }
}

/// Checks a setting value: any JSON value the spec allows (string, number,
/// boolean, array, object — not null), at most 64 KiB.
pub fn validate_setting_value(value: &Value) -> Result<(), Error> {
    if value.is_null() {
        return Err(Error::invalid(
            "a setting value cannot be null: DELETE the setting instead",
        ));
    }
    let size = serde_json::to_vec(value).map_or(0, |b| b.len());
    if size > MAX_SETTING_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the setting value is {size} bytes; at most {MAX_SETTING_BYTES}"
        )));
    }
    Ok(())
}

/// Whether a setting counts as "enabled": `true`, or an object whose
/// `enabled` is `true`.
pub fn setting_enabled(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(map)) => map.get("enabled") == Some(&Value::Bool(true)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_urls_are_http_or_https() {
        for good in [
            "https://acme.example/logo.png",
            "http://acme.example",
            "HTTPS://A.B?x#y",
        ] {
            assert!(http_url("logo_url", good).is_ok(), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>",
            "https://",
            "//acme.example",
            "acme.example",
            "https://acme.example/a b",
            "https://acme.example/\n",
            "ftp://acme.example",
        ] {
            assert!(http_url("logo_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entitlement_fields_are_named() {
        let change = TenantChange {
            pricing_tier: Change::Set("enterprise".into()),
            free_user_limit: Change::Clear,
            name: Change::Set("x".into()),
            ..TenantChange::default()
        };
        assert_eq!(
            change.entitlement_fields(),
            vec!["pricing_tier", "free_user_limit"]
        );
        assert!(TenantChange::default().entitlement_fields().is_empty());
    }
    use crate::domain::organization::AccountsProfile;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn changes_are_checked_by_type_and_enum() {
        let bad = [
            TenantChange {
                organization_use: Change::Set("Staging".into()),
                ..Default::default()
            },
            TenantChange {
                kind: Change::Set("Customer".into()),
                ..Default::default()
            },
            TenantChange {
                free_user_limit: Change::Set(-1.0),
                ..Default::default()
            },
            TenantChange {
                free_user_limit: Change::Set(1.5),
                ..Default::default()
            },
            TenantChange {
                email: Change::Set("nope".into()),
                ..Default::default()
            },
            TenantChange {
                name: Change::Clear,
                ..Default::default()
            },
        ];
        for change in bad {
            assert!(change.validate().is_err(), "{change:?}");
        }
    }

    #[test]
    fn a_patch_sets_clears_and_keeps() {
        let (mut org, _) =
            Organization::create_named(Uuid::nil(), "Acme", AccountsProfile::default(), "t")
                .unwrap();
        let set = TenantChange {
            name: Change::Set("Acme GmbH".into()),
            phone: Change::Set("+49 1".into()),
            tags: Change::Set(vec!["test org".into()]),
            ..Default::default()
        };
        assert!(set.apply(&mut org));
        assert!(
            !set.apply(&mut org),
            "the same change again changes nothing"
        );
        let clear = TenantChange {
            phone: Change::Clear,
            ..Default::default()
        };
        assert!(clear.apply(&mut org));
        let t = org.tenant.clone().unwrap();
        assert_eq!((t.phone, t.tags), (None, Some(vec!["test org".into()])));
        assert_eq!(org.name.as_deref(), Some("Acme GmbH"));
    }

    #[test]
    fn setting_keys_values_and_enabled() {
        assert!(validate_setting_key("double_opt_in").is_ok());
        assert!(validate_setting_key("a:b.c-d").is_ok());
        for bad in ["", "a b", "ä", &"k".repeat(129), "a/b"] {
            assert!(validate_setting_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_setting_value(&json!(null)).is_err());
        let big = json!("x".repeat(MAX_SETTING_BYTES));
        assert_eq!(
            validate_setting_value(&big).unwrap_err().status().as_u16(),
            413
        );
        assert!(setting_enabled(Some(&json!(true))));
        assert!(setting_enabled(Some(&json!({"enabled": true, "x": 1}))));
        assert!(!setting_enabled(Some(&json!({"enabled": "yes"}))));
        assert!(!setting_enabled(Some(&json!("true"))));
        assert!(!setting_enabled(None));
    }
}
