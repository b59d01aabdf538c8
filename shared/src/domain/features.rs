//! Feature settings (seed 003's `FeatureSettings`): the flag definitions a
//! project imports, and the visibility rules evaluated for one caller's
//! organization so a client sees only the flags that apply to it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tenant::setting_enabled;
use crate::error::Error;

/// How deep rules may nest (a bound on recursion, far beyond real use).
pub const MAX_DEPTH: usize = 32;

/// The document a project imports (`orgctl flags import FILE.json`): the
/// spec's `FeatureSettings`, plus the platform flags that are on for the
/// whole project (what `feature_flag` rules read).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureDocument {
    pub version: String,
    pub feature_flags: Vec<Map<String, Value>>,
    #[serde(default)]
    pub enabled_flags: Vec<String>,
}

/// One visibility rule (seed 003's `VisibilityRule`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = VisibilityRule)]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: RuleKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    // A rule of rules: its schema refers to itself (no_recursion stops the
    // document's generation from following the reference forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub rule: Option<Box<Rule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub rules: Option<Vec<Rule>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Always,
    Never,
    AdvancedMode,
    PricingTier,
    FeatureFlag,
    Permission,
    SettingEnabled,
    FlagEnabled,
    Not,
    And,
    Or,
}

/// What rules are evaluated against: the caller's organization and who
/// the caller is.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub pricing_tier: Option<String>,
    /// `Vendor` or `Partner`.
    pub organization_type: Option<String>,
    pub settings: Map<String, Value>,
    /// Platform flags on for the project.
    pub enabled_flags: HashSet<String>,
    /// `None`: every permission (a secret key). Else `action` or
    /// `action:resource` entries, `*` for all.
    pub permissions: Option<HashSet<String>>,
}

impl Context {
    fn permitted(&self, action: &str, resource: Option<&str>) -> bool {
        match &self.permissions {
            None => true,
            Some(granted) => {
                granted.contains("*")
                    || granted.contains(action)
                    || resource.is_some_and(|r| granted.contains(&format!("{action}:{r}")))
            }
        }
    }
}

impl Rule {
    /// Checks the rule's shape: each type has the fields it needs, and
    /// nesting stays within [`MAX_DEPTH`].
    pub fn validate(&self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("rules nest deeper than {MAX_DEPTH} levels"));
        }
        let need = |field: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(format!("a {:?} rule needs `{field}`", self.kind))
            }
        };
        match self.kind {
            RuleKind::Always | RuleKind::Never | RuleKind::AdvancedMode => Ok(()),
            RuleKind::PricingTier | RuleKind::SettingEnabled => {
                need("setting_key", self.setting_key.is_some())
            }
            RuleKind::FeatureFlag | RuleKind::FlagEnabled => {
                need("flag_name", self.flag_name.is_some())
            }
            RuleKind::Permission => need("action", self.action.is_some()),
            RuleKind::Not => match &self.rule {
                Some(rule) => rule.validate(depth + 1),
                None => Err("a Not rule needs `rule`".into()),
            },
            RuleKind::And | RuleKind::Or => match &self.rules {
                Some(rules) => rules.iter().try_for_each(|r| r.validate(depth + 1)),
                None => Err(format!("a {:?} rule needs `rules`", self.kind)),
            },
        }
    }

    /// Whether the rule holds for the context. A malformed rule (which
    /// import refuses) holds for no one.
    pub fn holds(&self, cx: &Context) -> bool {
        match self.kind {
            RuleKind::Always => true,
            RuleKind::Never => false,
            RuleKind::AdvancedMode => setting_enabled(cx.settings.get("advanced_mode")),
            // `setting_key` names the tiers that see it (comma-separated).
            RuleKind::PricingTier => match (&self.setting_key, &cx.pricing_tier) {
                (Some(tiers), Some(tier)) => tiers.split(',').any(|t| t.trim() == tier),
                _ => false,
            },
            RuleKind::FeatureFlag => self
                .flag_name
                .as_ref()
                .is_some_and(|f| cx.enabled_flags.contains(f)),
            RuleKind::Permission => self
                .action
                .as_deref()
                .is_some_and(|a| cx.permitted(a, self.resource.as_deref())),
            RuleKind::SettingEnabled => self
                .setting_key
                .as_ref()
                .is_some_and(|k| setting_enabled(cx.settings.get(k))),
            // The organization has turned the named feature on.
            RuleKind::FlagEnabled => self
                .flag_name
                .as_ref()
                .is_some_and(|f| setting_enabled(cx.settings.get(f))),
            RuleKind::Not => self.rule.as_ref().is_some_and(|r| !r.holds(cx)),
            RuleKind::And => self
                .rules
                .as_ref()
                .is_some_and(|rules| rules.iter().all(|r| r.holds(cx))),
            RuleKind::Or => self
                .rules
                .as_ref()
                .is_some_and(|rules| rules.iter().any(|r| r.holds(cx))),
        }
    }
}

fn rules_of(flag: &Map<String, Value>) -> Result<Vec<Rule>, String> {
    let rules = flag
        .get("visibility_rules")
        .ok_or("a flag needs `visibility_rules`")?;
    serde_json::from_value(rules.clone()).map_err(|e| format!("visibility_rules: {e}"))
}

impl FeatureDocument {
    /// Checks a document before it is stored: every flag named, every
    /// rule well-formed (400 names the flag and the problem).
    pub fn validate(&self) -> Result<(), Error> {
        if self.version.trim().is_empty() {
            return Err(Error::invalid("the feature settings need a `version`"));
        }
        let mut names = HashSet::new();
        for (i, flag) in self.feature_flags.iter().enumerate() {
            let name = flag
                .get("feature_name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    Error::invalid(format!("feature_flags[{i}] needs a `feature_name`"))
                })?;
            if !names.insert(name) {
                return Err(Error::invalid(format!(
                    "feature_flags[{i}]: {name:?} is defined twice"
                )));
            }
            rules_of(flag)
                .and_then(|rules| rules.iter().try_for_each(|r| r.validate(1)))
                .map_err(|e| Error::invalid(format!("feature_flags[{i}] ({name}): {e}")))?;
        }
        Ok(())
    }

    /// The flags visible in this context (all of a flag's rules hold, and
    /// a partner organization sees only flags visible for partners), each
    /// with `enabled`: whether the organization has turned it on.
    pub fn visible(&self, cx: &Context) -> Vec<Map<String, Value>> {
        let partner = cx.organization_type.as_deref() == Some("Partner");
        self.feature_flags
            .iter()
            .filter(|flag| {
                let for_partners = flag.get("is_visible_for_partner") != Some(&Value::Bool(false));
                (!partner || for_partners)
                    && rules_of(flag).is_ok_and(|rules| rules.iter().all(|r| r.holds(cx)))
            })
            .map(|flag| {
                let mut flag = flag.clone();
                let name = flag
                    .get("feature_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let enabled = setting_enabled(cx.settings.get(name));
                flag.insert("enabled".into(), Value::Bool(enabled));
                flag
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        let r: Rule = serde_json::from_value(v).unwrap();
        r.validate(1).unwrap();
        r
    }

    fn cx() -> Context {
        Context {
            pricing_tier: Some("professional".into()),
            organization_type: Some("Vendor".into()),
            settings: json!({
                "advanced_mode": {"enabled": true},
                "double_opt_in": true,
                "canary": {"enabled": false},
                "beta_ui": true,
            })
            .as_object()
            .cloned()
            .unwrap(),
            enabled_flags: ["new-editor".to_owned()].into(),
            permissions: Some(["entity:view".to_owned(), "billing".to_owned()].into()),
        }
    }

    #[test]
    fn every_leaf_rule_both_ways() {
        let cx = cx();
        let cases = [
            (json!({"type": "always"}), true),
            (json!({"type": "never"}), false),
            (json!({"type": "advanced_mode"}), true),
            (
                json!({"type": "pricing_tier", "setting_key": "professional"}),
                true,
            ),
            (
                json!({"type": "pricing_tier", "setting_key": "starter, professional"}),
                true,
            ),
            (
                json!({"type": "pricing_tier", "setting_key": "enterprise"}),
                false,
            ),
            (
                json!({"type": "feature_flag", "flag_name": "new-editor"}),
                true,
            ),
            (
                json!({"type": "feature_flag", "flag_name": "old-editor"}),
                false,
            ),
            (json!({"type": "permission", "action": "billing"}), true),
            (
                json!({"type": "permission", "action": "entity", "resource": "view"}),
                true,
            ),
            (
                json!({"type": "permission", "action": "entity", "resource": "edit"}),
                false,
            ),
            (json!({"type": "permission", "action": "admin"}), false),
            (
                json!({"type": "setting_enabled", "setting_key": "double_opt_in"}),
                true,
            ),
            (
                json!({"type": "setting_enabled", "setting_key": "canary"}),
                false,
            ),
            (
                json!({"type": "setting_enabled", "setting_key": "missing"}),
                false,
            ),
            (
                json!({"type": "flag_enabled", "flag_name": "beta_ui"}),
                true,
            ),
            (
                json!({"type": "flag_enabled", "flag_name": "canary"}),
                false,
            ),
        ];
        for (r, expected) in cases {
            assert_eq!(rule(r.clone()).holds(&cx), expected, "{r}");
        }
    }

    #[test]
    fn the_context_changes_the_answers() {
        let mut cx = cx();
        cx.pricing_tier = None;
        assert!(!rule(json!({"type": "pricing_tier", "setting_key": "professional"})).holds(&cx));
        cx.settings.clear();
        assert!(!rule(json!({"type": "advanced_mode"})).holds(&cx));
        cx.permissions = None;
        assert!(rule(json!({"type": "permission", "action": "anything"})).holds(&cx));
        cx.permissions = Some(["*".to_owned()].into());
        assert!(rule(json!({"type": "permission", "action": "anything"})).holds(&cx));
    }

    #[test]
    fn combinators_nest_to_any_depth() {
        let cx = cx();
        let yes = json!({"type": "always"});
        let no = json!({"type": "never"});
        assert!(rule(json!({"type": "not", "rule": no})).holds(&cx));
        assert!(!rule(json!({"type": "not", "rule": yes})).holds(&cx));
        assert!(rule(json!({"type": "and", "rules": [yes, yes]})).holds(&cx));
        assert!(!rule(json!({"type": "and", "rules": [yes, no]})).holds(&cx));
        assert!(
            rule(json!({"type": "and", "rules": []})).holds(&cx),
            "empty and"
        );
        assert!(rule(json!({"type": "or", "rules": [no, yes]})).holds(&cx));
        assert!(!rule(json!({"type": "or", "rules": [no, no]})).holds(&cx));
        assert!(
            !rule(json!({"type": "or", "rules": []})).holds(&cx),
            "empty or"
        );
        // not(and(or(never, tier), not(never))) at depth 4 … and deeper.
        let nested = json!({"type": "not", "rule": {"type": "and", "rules": [
            {"type": "or", "rules": [no, {"type": "pricing_tier", "setting_key": "professional"}]},
            {"type": "not", "rule": no}
        ]}});
        assert!(!rule(nested).holds(&cx));
        let mut deep = json!({"type": "always"});
        for _ in 0..30 {
            deep = json!({"type": "not", "rule": deep});
        }
        assert!(rule(deep).holds(&cx), "30 nots of always");
    }

    #[test]
    fn malformed_rules_are_refused_at_import() {
        for bad in [
            json!({"type": "pricing_tier"}),
            json!({"type": "setting_enabled"}),
            json!({"type": "feature_flag"}),
            json!({"type": "flag_enabled"}),
            json!({"type": "permission"}),
            json!({"type": "not"}),
            json!({"type": "and"}),
            json!({"type": "or", "rules": [{"type": "not"}]}),
        ] {
            let r: Rule = serde_json::from_value(bad.clone()).unwrap();
            assert!(r.validate(1).is_err(), "{bad}");
            assert!(!r.holds(&cx()), "{bad}");
        }
        assert!(serde_json::from_value::<Rule>(json!({"type": "sometimes"})).is_err());
        let mut deep = json!({"type": "always"});
        for _ in 0..MAX_DEPTH {
            deep = json!({"type": "not", "rule": deep});
        }
        let r: Rule = serde_json::from_value(deep).unwrap();
        assert!(r.validate(1).is_err(), "deeper than the bound");
    }

    #[test]
    fn a_document_shows_what_applies_with_enabled_answers() {
        let doc: FeatureDocument = serde_json::from_value(json!({
            "version": "1.0.0",
            "enabled_flags": ["new-editor"],
            "feature_flags": [
                {"feature_name": "canary", "visibility_rules": [{"type": "always"}]},
                {"feature_name": "double_opt_in", "badge": "beta",
                 "visibility_rules": [{"type": "pricing_tier", "setting_key": "professional"}]},
                {"feature_name": "enterprise_sso",
                 "visibility_rules": [{"type": "pricing_tier", "setting_key": "enterprise"}]},
                {"feature_name": "partner_hidden", "is_visible_for_partner": false,
                 "visibility_rules": [{"type": "always"}, {"type": "setting_enabled", "setting_key": "double_opt_in"}]}
            ]
        }))
        .unwrap();
        doc.validate().unwrap();
        let names = |flags: Vec<Map<String, Value>>| {
            flags
                .iter()
                .map(|f| {
                    (
                        f["feature_name"].as_str().unwrap().to_owned(),
                        f["enabled"].as_bool().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut cx = cx();
        assert_eq!(
            names(doc.visible(&cx)),
            vec![
                ("canary".into(), false),
                ("double_opt_in".into(), true),
                ("partner_hidden".into(), false)
            ]
        );
        cx.organization_type = Some("Partner".into());
        cx.pricing_tier = Some("enterprise".into());
        assert_eq!(
            names(doc.visible(&cx)),
            vec![("canary".into(), false), ("enterprise_sso".into(), false)]
        );
        let twice: FeatureDocument = serde_json::from_value(json!({"version": "1",
            "feature_flags": [{"feature_name": "a", "visibility_rules": []}, {"feature_name": "a", "visibility_rules": []}]})).unwrap();
        assert!(twice.validate().is_err());
    }
}
