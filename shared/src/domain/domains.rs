//! An organization's email domains: claimed unverified with a token, then
//! verified by a DNS TXT record that carries the token.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// The label under the domain where the TXT record goes
/// (`_organizations-verification.example.com`), so verification never
/// touches the domain's own TXT records.
pub const VERIFICATION_LABEL: &str = "_organizations-verification";

pub use crate::limits::MAX_DOMAINS;

/// Mail providers whose addresses belong to the public, not to one
/// organization: claiming one would hand its users to whoever asked first.
const CONSUMER_MAIL: &[&str] = &[
    "126.com",
    "163.com",
    "aol.com",
    "att.net",
    "comcast.net",
    "fastmail.com",
    "free.fr",
    "gmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hey.com",
    "hotmail.co.uk",
    "hotmail.com",
    "hotmail.fr",
    "icloud.com",
    "laposte.net",
    "libero.it",
    "live.com",
    "mac.com",
    "mail.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "naver.com",
    "orange.fr",
    "outlook.com",
    "pm.me",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "rediffmail.com",
    "t-online.de",
    "tuta.io",
    "tutanota.com",
    "verizon.net",
    "web.de",
    "yahoo.co.uk",
    "yahoo.com",
    "yahoo.fr",
    "yandex.com",
    "yandex.ru",
    "ymail.com",
    "zoho.com",
];

/// One domain of an organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgDomain {
    pub id: Uuid,
    pub domain: String,
    pub verified: bool,
    /// What the TXT record must carry.
    pub token: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
}

impl OrgDomain {
    /// A new, unverified claim of an already normalised domain.
    pub fn claim(domain: String, now: &str) -> Result<Self, Error> {
        Ok(Self {
            id: crate::ids::new_id(),
            domain,
            verified: false,
            token: new_token()?,
            created_at: now.to_owned(),
            verified_at: None,
        })
    }

    /// The DNS name whose TXT record proves the claim.
    pub fn record_name(&self) -> String {
        format!("{VERIFICATION_LABEL}.{}", self.domain)
    }

    /// Whether one of the TXT strings found is this claim's token.
    pub fn proven_by<'a>(&self, txt: impl IntoIterator<Item = &'a str>) -> bool {
        txt.into_iter().any(|t| t.trim() == self.token)
    }
}

fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    Ok(format!("organizations-verification={}", hex::encode(bytes)))
}

/// Normalises a domain as a person types it (`Example.COM.` →
/// `example.com`) and checks it is a registrable-looking DNS name that is
/// not a public mail provider's.
pub fn normalize_domain(raw: &str) -> Result<String, Error> {
    let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| Err(Error::invalid(format!("domain {raw:?} {why}")));
    if domain.is_empty() {
        return bad("is empty");
    }
    if !domain.is_ascii() {
        return bad("is not ASCII: send an internationalised name in its punycode (xn--) form");
    }
    if domain.len() > 253 {
        return bad("is longer than 253 characters");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad("needs at least two labels, like example.com");
    }
    for label in &labels {
        let valid = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return bad("has a label that is not 1-63 letters, digits or inner hyphens");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("is an address, not a domain name");
    }
    if CONSUMER_MAIL
        .iter()
        .any(|c| domain == *c || domain.ends_with(&format!(".{c}")))
    {
        return bad("belongs to a public mail provider and cannot be claimed by an organization");
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(normalize_domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "exa mple.com",
            "-a.com",
            "a-.com",
            "a..com",
            "bücher.de",
            "10.0.0.1",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn consumer_mail_domains_and_their_subdomains_are_refused() {
        for consumer in ["gmail.com", "GMAIL.com", "mail.yahoo.com", "proton.me"] {
            let err = normalize_domain(consumer).unwrap_err().to_string();
            assert!(err.contains("public mail provider"), "{consumer}: {err}");
        }
        assert!(normalize_domain("notgmail.com").is_ok());
    }

    #[test]
    fn a_claim_is_proven_only_by_its_own_token() {
        let claim = OrgDomain::claim("example.com".into(), "2026-01-01T00:00:00.000Z").unwrap();
        let other = OrgDomain::claim("example.com".into(), "2026-01-01T00:00:00.000Z").unwrap();
        assert_ne!(claim.token, other.token);
        assert_eq!(
            claim.record_name(),
            "_organizations-verification.example.com"
        );
        assert!(claim.proven_by(["v=spf1 -all", &format!(" {} ", claim.token)]));
        assert!(!claim.proven_by([other.token.as_str()]));
        assert!(!claim.proven_by([]));
    }
}
