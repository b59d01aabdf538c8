//! Segmentation rules in Lunogram's rule-tree format (`internal/rules` of
//! its platform), compiled once into a [`Segment`] and evaluated for one
//! user over the facts the service holds: the user, their memberships and
//! organizations, and the organizations' events (daily counters, or the
//! events themselves when a rule reads their data). Pure: the store gathers
//! the facts, this decides.
//!
//! What Lunogram means, and so what this means: a node of group
//! `organization`, `organization_user` or `organization_event` holds for a
//! user with at least one membership (an organization and the user's place
//! in it) that satisfies it; a wrapper whose children are only such leaves
//! asks them of the same membership; other wrappers combine their children
//! as `and`/`or` over the user.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Duration, OffsetDateTime};

use super::{Data, Membership, Organization, User};
use crate::error::Error;
use crate::limits::MAX_RULE_EVENTS_PER_ORGANIZATION;

/// How deep a rule tree may nest.
pub const MAX_DEPTH: usize = 16;
/// Most nodes in one tree.
pub const MAX_NODES: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Wrapper,
    String,
    Number,
    Boolean,
    Date,
    Array,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Parent,
    User,
    /// A user's own events: this service holds none, so a rule that reads
    /// them is refused (400); inside an `organization_event` node it is a
    /// condition on that event's data, as in Lunogram.
    Event,
    Organization,
    OrganizationUser,
    OrganizationEvent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Operator {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "is set")]
    IsSet,
    #[serde(rename = "is not set")]
    IsNotSet,
    #[serde(rename = "empty")]
    Empty,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "not contain")]
    NotContain,
    #[serde(rename = "starts with")]
    StartsWith,
    #[serde(rename = "not start with")]
    NotStartWith,
    #[serde(rename = "ends with")]
    EndsWith,
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "none")]
    None,
    #[serde(rename = "is same day")]
    SameDay,
    #[serde(rename = "and")]
    And,
    #[serde(rename = "or")]
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// The last `value` `unit`s up to now.
    Rolling,
    /// Part of Lunogram's format, but its engine evaluates no absolute
    /// period (it refuses them); refused here too.
    Absolute,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Period {
    #[serde(rename = "type")]
    pub kind: PeriodKind,
    pub unit: Unit,
    pub value: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Frequency {
    pub count: u64,
    pub operator: Operator,
    pub period: Period,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserMatchKind {
    /// Every member of a matching organization.
    All,
    /// Only members whose membership satisfies `member_conditions`.
    Conditions,
}

/// `member_conditions`: one rule node, as Lunogram writes it (often a
/// wrapper); a list of nodes (this service's earlier format) means all of
/// them.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MemberConditions {
    #[schema(no_recursion)]
    One(Box<Rule>),
    #[schema(no_recursion)]
    All(Vec<Rule>),
}

impl<'de> Deserialize<'de> for MemberConditions {
    // By hand, so that an error inside the node keeps its own message
    // (an untagged enum says only that no variant matched).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(deserializer)? {
            Value::Array(items) => items
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<Rule>, _>>()
                .map(MemberConditions::All)
                .map_err(D::Error::custom),
            one => serde_json::from_value(one)
                .map(|r| MemberConditions::One(Box::new(r)))
                .map_err(D::Error::custom),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserMatch {
    #[serde(rename = "type")]
    pub kind: UserMatchKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_conditions: Option<MemberConditions>,
}

/// One node of a rule tree, as Lunogram writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SegmentRule)]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub group: Group,
    /// Where the value is: `.plan`, `.data.plan`, `.data['purchase
    /// agreement'].value`. On wrappers, ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A comparison on a leaf; `and` (the default) or `or` on a wrapper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// What the leaf compares with; on an `organization_event` node, the
    /// event's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Value>,
    // A tree: its schema refers to itself. `null` is no children.
    #[serde(
        default,
        deserialize_with = "null_is_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schema(no_recursion)]
    pub children: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Frequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_match: Option<UserMatch>,
    /// Lunogram's node ids: accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub uuid: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub root_uuid: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub parent_uuid: Option<Value>,
}

fn null_is_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Rule>, D::Error> {
    Ok(Option::<Vec<Rule>>::deserialize(deserializer)?.unwrap_or_default())
}

fn at(node: &str, problem: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{node}: {problem}"))
}

/// A parsed path: `.a.b`, `.a['b c']`, `.a["b c"].d`, `['a']`.
pub fn parse_path(raw: &str) -> Result<Vec<String>, String> {
    let bad = || format!("`path` {raw:?} is not a path like `.plan` or `.data['a b'].c`");
    let mut segments = Vec::new();
    let mut rest = raw;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(".[").or_else(|| rest.strip_prefix('[')) {
            let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"');
            let Some(quote) = quote else {
                return Err(bad());
            };
            let inner = &after[1..];
            let Some(end) = inner.find(quote) else {
                return Err(bad());
            };
            let key = &inner[..end];
            let Some(tail) = inner[end + 1..].strip_prefix(']') else {
                return Err(bad());
            };
            if key.is_empty() {
                return Err(bad());
            }
            segments.push(key.to_owned());
            rest = tail;
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[', ']']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() || key.contains(['\'', '"']) {
                return Err(bad());
            }
            segments.push(key.to_owned());
            rest = &after[end..];
        } else {
            return Err(bad());
        }
    }
    Ok(segments)
}

/// Where a leaf reads its value.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    /// A field of the record itself (`name`, `external_id`, `created_at`,
    /// `updated_at`).
    Field(&'static str),
    /// Keys into the record's custom `data` (empty: the whole object).
    Data(Vec<String>),
}

/// The custom-data keys of a path: `.plan` and `.data.plan` alike (as
/// Lunogram's `normalizeDataPath`: only a leading `.data` segment is the
/// column; `.database` is the key `database`).
fn data_path(raw: &str) -> Result<Vec<String>, String> {
    let segments = parse_path(raw)?;
    let prefixed = raw == ".data" || raw.starts_with(".data.") || raw.starts_with(".data[");
    Ok(if prefixed {
        segments[1..].to_vec()
    } else {
        segments
    })
}

/// Record fields by path, for organizations and users; any other path
/// reads custom data.
fn record_or_data(raw: &str, fields: &[&'static str]) -> Result<Target, String> {
    let own = raw
        .strip_prefix('.')
        .and_then(|name| fields.iter().find(|f| **f == name));
    match own {
        Some(field) => Ok(Target::Field(field)),
        None => data_path(raw).map(Target::Data),
    }
}

const ORGANIZATION_FIELDS: &[&str] = &["name", "external_id", "created_at", "updated_at"];
const USER_FIELDS: &[&str] = &["external_id", "created_at", "updated_at"];

/// One comparison of a leaf.
#[derive(Clone, Debug, PartialEq)]
struct Test {
    kind: Kind,
    op: Operator,
    target: Target,
    value: Option<Value>,
}

impl Test {
    fn passes(&self, actual: Option<&Value>) -> bool {
        compare(self.kind, self.op, actual, self.value.as_ref())
    }
}

/// A three-valued answer: a capped read of events may leave a count
/// undecided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    No,
    Yes,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Self {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn any(items: impl IntoIterator<Item = Tri>) -> Tri {
        let mut out = Tri::No;
        for item in items {
            match item {
                Tri::Yes => return Tri::Yes,
                Tri::Unknown => out = Tri::Unknown,
                Tri::No => {}
            }
        }
        out
    }
}

/// A condition on an event's data (the children of an
/// `organization_event` node).
#[derive(Clone, Debug, PartialEq)]
enum EventCondition {
    All(Vec<EventCondition>),
    Any(Vec<EventCondition>),
    Test(Test),
}

impl EventCondition {
    fn holds(&self, event: &OrgEvent) -> bool {
        match self {
            EventCondition::All(c) => c.iter().all(|c| c.holds(event)),
            EventCondition::Any(c) => c.is_empty() || c.iter().any(|c| c.holds(event)),
            EventCondition::Test(t) => t.passes(lookup(&event.data, &t.target).as_deref()),
        }
    }
}

/// How often an organization did an event in a window.
#[derive(Clone, Debug, PartialEq)]
struct EventCount {
    name: String,
    frequency: Frequency,
    /// `None`: any event of the name (the daily counters answer); else
    /// only events whose data satisfies it (the events are read).
    condition: Option<EventCondition>,
}

/// What one membership must satisfy: conditions on the organization's
/// record, on the membership, and on the organization's events.
#[derive(Clone, Debug, PartialEq)]
enum Pred {
    All(Vec<Pred>),
    Any(Vec<Pred>),
    Organization(Test),
    Member(Test),
    Events(Box<EventCount>),
}

/// A node that holds for a user through their memberships.
#[derive(Clone, Debug, PartialEq)]
pub struct Exists {
    node: String,
    pred: Pred,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    User { node: String, test: Test },
    Exists(Exists),
}

/// A validated rule tree, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    root: Node,
}

fn combinator(node: &str, op: Option<Operator>) -> Result<bool, Error> {
    match op {
        Option::None | Some(Operator::And) => Ok(true),
        Some(Operator::Or) => Ok(false),
        Some(other) => Err(at(
            node,
            format!("a wrapper takes `and` or `or`, not {other:?}"),
        )),
    }
}

fn is_leaf_of(rule: &Rule, groups: &[Group]) -> bool {
    rule.kind != Kind::Wrapper && groups.contains(&rule.group)
}

const NO_USER_EVENTS: &str = "group `event` reads a user's own events, which this service does not hold (it holds organizations' events: use group `organization_event`)";

struct Compiler {
    nodes: usize,
}

impl Compiler {
    /// Each child of `rule` compiled by `each`, one level deeper, named
    /// `node.children[i]` in a refusal.
    fn children<T>(
        &mut self,
        rule: &Rule,
        node: &str,
        depth: usize,
        each: fn(&mut Self, &Rule, &str, usize) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        rule.children
            .iter()
            .enumerate()
            .map(|(i, c)| each(self, c, &format!("{node}.children[{i}]"), depth + 1))
            .collect()
    }

    fn enter(&mut self, node: &str, depth: usize) -> Result<(), Error> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(at(node, format!("a rule has at most {MAX_NODES} nodes")));
        }
        if depth > MAX_DEPTH {
            return Err(at(node, format!("rules nest at most {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    fn node(&mut self, rule: &Rule, node: &str, depth: usize) -> Result<Node, Error> {
        self.enter(node, depth)?;
        let child = |i: usize| format!("{node}.children[{i}]");
        if rule.group == Group::Event {
            return Err(at(node, NO_USER_EVENTS));
        }
        if rule.user_match.is_some()
            && !matches!(rule.group, Group::Organization | Group::OrganizationEvent)
        {
            return Err(at(node, "`user_match` belongs on organization rules"));
        }
        if rule.group == Group::OrganizationEvent {
            let pred = self.event_rule(rule, node, depth)?;
            return Ok(exists(node, pred));
        }
        if rule.kind == Kind::Wrapper {
            let and = combinator(node, rule.operator)?;
            if rule.group == Group::Organization {
                // Lunogram's organization property rule.
                if rule.children.is_empty() {
                    return Err(at(node, "an organization rule needs at least one organization condition in `children`"));
                }
                let mut conditions = Vec::new();
                for (i, c) in rule.children.iter().enumerate() {
                    conditions.push(self.organization_condition(c, &child(i), depth + 1)?);
                }
                let mut all = vec![combine(and, conditions)];
                all.extend(self.user_match(rule, node, depth)?);
                return Ok(exists(node, Pred::All(all)));
            }
            let same_membership = !rule.children.is_empty()
                && rule
                    .children
                    .iter()
                    .all(|c| is_leaf_of(c, &[Group::Organization, Group::OrganizationUser]));
            if same_membership {
                let mut conditions = Vec::new();
                for (i, c) in rule.children.iter().enumerate() {
                    let name = child(i);
                    self.enter(&name, depth + 1)?;
                    conditions.push(match c.group {
                        Group::Organization => {
                            let mut all = vec![Pred::Organization(organization_test(c, &name)?)];
                            all.extend(self.user_match(c, &name, depth + 1)?);
                            Pred::All(all)
                        }
                        _ => {
                            if c.user_match.is_some() {
                                return Err(at(
                                    &name,
                                    "`user_match` belongs on organization rules",
                                ));
                            }
                            Pred::Member(member_test(c, &name)?)
                        }
                    });
                }
                return Ok(exists(node, combine(and, conditions)));
            }
            let children = rule
                .children
                .iter()
                .enumerate()
                .map(|(i, c)| self.node(c, &child(i), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if and {
                Node::All(children)
            } else {
                Node::Any(children)
            });
        }
        match rule.group {
            Group::Parent => Err(at(
                node,
                "a node of group `parent` is a wrapper (`\"type\": \"wrapper\"`)",
            )),
            Group::User => Ok(Node::User {
                node: node.to_owned(),
                test: leaf(rule, node, |raw| record_or_data(raw, USER_FIELDS))?,
            }),
            Group::Organization => {
                let mut all = vec![Pred::Organization(organization_test(rule, node)?)];
                all.extend(self.user_match(rule, node, depth)?);
                Ok(exists(node, Pred::All(all)))
            }
            Group::OrganizationUser => Ok(exists(node, Pred::Member(member_test(rule, node)?))),
            Group::Event | Group::OrganizationEvent => Err(at(node, NO_USER_EVENTS)),
        }
    }

    /// A child of an organization property rule: an organization leaf, or
    /// a wrapper of them.
    fn organization_condition(
        &mut self,
        rule: &Rule,
        node: &str,
        depth: usize,
    ) -> Result<Pred, Error> {
        self.enter(node, depth)?;
        if rule.kind == Kind::Wrapper {
            let and = combinator(node, rule.operator)?;
            let conditions = self.children(rule, node, depth, Self::organization_condition)?;
            return Ok(combine(and, conditions));
        }
        if rule.group != Group::Organization {
            return Err(at(node, "the children of an organization rule are `organization` conditions (member conditions go in `user_match`)"));
        }
        if rule.user_match.is_some() {
            return Err(at(
                node,
                "`user_match` belongs on the organization rule, not its children",
            ));
        }
        Ok(Pred::Organization(organization_test(rule, node)?))
    }

    /// `user_match` of an organization or organization-event node, as a
    /// condition on the membership (`None`: every member).
    fn user_match(&mut self, rule: &Rule, node: &str, depth: usize) -> Result<Option<Pred>, Error> {
        let Some(m) = &rule.user_match else {
            return Ok(Option::None);
        };
        let name = format!("{node}.user_match.member_conditions");
        match (m.kind, &m.member_conditions) {
            (UserMatchKind::All, _) | (UserMatchKind::Conditions, Option::None) => Ok(Option::None),
            (UserMatchKind::Conditions, Some(MemberConditions::One(c))) => {
                self.member_condition(c, &name, depth + 1).map(Some)
            }
            (UserMatchKind::Conditions, Some(MemberConditions::All(list))) => {
                let conditions = list
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.member_condition(c, &format!("{name}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Pred::All(conditions)))
            }
        }
    }

    fn member_condition(&mut self, rule: &Rule, node: &str, depth: usize) -> Result<Pred, Error> {
        self.enter(node, depth)?;
        if rule.kind == Kind::Wrapper {
            let and = combinator(node, rule.operator)?;
            let conditions = self.children(rule, node, depth, Self::member_condition)?;
            return Ok(combine(and, conditions));
        }
        if rule.group != Group::OrganizationUser {
            return Err(at(node, "member conditions are organization_user rules"));
        }
        Ok(Pred::Member(member_test(rule, node)?))
    }

    /// Lunogram's organization event rule: `value` names the event,
    /// `frequency` says how often, `children` filter the events by their
    /// data (all of them must hold, as in Lunogram), `user_match` the
    /// members.
    fn event_rule(&mut self, rule: &Rule, node: &str, depth: usize) -> Result<Pred, Error> {
        let name = match (&rule.value, rule.path.as_deref()) {
            (Some(Value::String(name)), _) if !name.trim().is_empty() => name.clone(),
            // This service's earlier format named the event in `path`;
            // a Lunogram path starts with `.`, so the two cannot meet.
            (Option::None, Some(path)) if !path.is_empty() && !path.starts_with(['.', '[']) => {
                path.to_owned()
            }
            _ => {
                return Err(at(
                    node,
                    "an organization_event rule names the event in `value` (a string)",
                ))
            }
        };
        let Some(frequency) = rule.frequency.clone() else {
            return Err(at(
                node,
                "an organization_event rule needs `frequency` ({count, operator, period})",
            ));
        };
        if frequency.period.kind != PeriodKind::Rolling {
            return Err(at(node, "frequency.period.type must be `rolling` (Lunogram's engine evaluates no `absolute` period either)"));
        }
        if frequency.period.value == 0 {
            return Err(at(node, "frequency.period.value must be at least 1"));
        }
        if !matches!(
            frequency.operator,
            Operator::Eq | Operator::Ne | Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge
        ) {
            return Err(at(node, "frequency.operator must compare (= != < <= > >=)"));
        }
        let conditions = self.children(rule, node, depth, Self::event_condition)?;
        let count = EventCount {
            name,
            frequency,
            condition: (!conditions.is_empty()).then_some(EventCondition::All(conditions)),
        };
        let mut all = vec![Pred::Events(Box::new(count))];
        all.extend(self.user_match(rule, node, depth)?);
        Ok(Pred::All(all))
    }

    fn event_condition(
        &mut self,
        rule: &Rule,
        node: &str,
        depth: usize,
    ) -> Result<EventCondition, Error> {
        self.enter(node, depth)?;
        if rule.kind == Kind::Wrapper {
            let and = combinator(node, rule.operator)?;
            let conditions = self.children(rule, node, depth, Self::event_condition)?;
            return Ok(if and {
                EventCondition::All(conditions)
            } else {
                EventCondition::Any(conditions)
            });
        }
        if !matches!(
            rule.group,
            Group::Event | Group::OrganizationEvent | Group::Parent
        ) {
            return Err(at(node, "the children of an organization_event rule are conditions on the event's data (group `organization_event`)"));
        }
        Ok(EventCondition::Test(leaf(rule, node, |raw| {
            data_path(raw).map(Target::Data)
        })?))
    }
}

fn exists(node: &str, pred: Pred) -> Node {
    Node::Exists(Exists {
        node: node.to_owned(),
        pred,
    })
}

fn combine(and: bool, conditions: Vec<Pred>) -> Pred {
    if and {
        Pred::All(conditions)
    } else {
        Pred::Any(conditions)
    }
}

fn organization_test(rule: &Rule, node: &str) -> Result<Test, Error> {
    leaf(rule, node, |raw| record_or_data(raw, ORGANIZATION_FIELDS))
}

fn member_test(rule: &Rule, node: &str) -> Result<Test, Error> {
    leaf(rule, node, |raw| data_path(raw).map(Target::Data))
}

/// Checks a comparison leaf and reads its path with `target`.
fn leaf(
    rule: &Rule,
    node: &str,
    target: impl Fn(&str) -> Result<Target, String>,
) -> Result<Test, Error> {
    if !rule.children.is_empty() {
        return Err(at(node, "only a wrapper has `children`"));
    }
    let op = match rule.operator {
        Option::None => return Err(at(node, "a condition needs an `operator`")),
        Some(Operator::And | Operator::Or) => {
            return Err(at(
                node,
                "`and` and `or` belong on wrappers (`\"type\": \"wrapper\"`)",
            ))
        }
        Some(op) => op,
    };
    let target = target(rule.path.as_deref().unwrap_or_default()).map_err(|e| at(node, e))?;
    if !allowed(rule.kind, op) {
        return Err(at(
            node,
            format!("{op:?} does not apply to a {:?} value", rule.kind),
        ));
    }
    let needs_value = !matches!(op, Operator::IsSet | Operator::IsNotSet | Operator::Empty);
    if needs_value && rule.value.as_ref().is_none_or(Value::is_null) {
        return Err(at(node, "this operator needs a `value`"));
    }
    if matches!(op, Operator::Any | Operator::None)
        && !rule.value.as_ref().is_some_and(Value::is_array)
    {
        return Err(at(node, "`any` and `none` take an array `value`"));
    }
    if rule.kind == Kind::Date && needs_value && !matches!(op, Operator::Any | Operator::None) {
        let ok = rule
            .value
            .as_ref()
            .and_then(Value::as_str)
            .and_then(parse_date)
            .is_some();
        if !ok {
            return Err(at(node, "a date `value` must be a date or date-time"));
        }
    }
    Ok(Test {
        kind: rule.kind,
        op,
        target,
        value: rule.value.clone(),
    })
}

impl Rule {
    /// Checks the tree; a 400 names the offending node (`rule.children[1]`).
    pub fn validate(&self) -> Result<(), Error> {
        self.compile().map(|_| ())
    }

    /// The validated tree, ready to evaluate.
    pub fn compile(&self) -> Result<Segment, Error> {
        let mut compiler = Compiler { nodes: 0 };
        Ok(Segment {
            root: compiler.node(self, "rule", 1)?,
        })
    }
}

fn allowed(kind: Kind, op: Operator) -> bool {
    use Operator::*;
    match op {
        IsSet | IsNotSet | Empty => true,
        Eq | Ne => kind != Kind::Array,
        Lt | Le | Gt | Ge => matches!(kind, Kind::Number | Kind::Date | Kind::String),
        Contains | NotContain => matches!(kind, Kind::String | Kind::Array),
        StartsWith | NotStartWith | EndsWith => kind == Kind::String,
        Any | None => matches!(kind, Kind::String | Kind::Number | Kind::Array),
        SameDay => kind == Kind::Date,
        And | Or => false,
    }
}

/// A date value: RFC 3339, or `YYYY-MM-DD` (midnight UTC).
pub fn parse_date(raw: &str) -> Option<OffsetDateTime> {
    crate::ids::parse_timestamp(raw).or_else(|| {
        Date::parse(
            raw,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok()
        .map(|d| d.midnight().assume_utc())
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => Option::None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => Option::None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => Option::None,
    }
}

fn ordered(op: Operator, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, ordering) {
        (_, Option::None) => false,
        (Operator::Eq, Some(o)) => o == Equal,
        (Operator::Ne, Some(o)) => o != Equal,
        (Operator::Lt, Some(o)) => o == Less,
        (Operator::Le, Some(o)) => o != Greater,
        (Operator::Gt, Some(o)) => o == Greater,
        (Operator::Ge, Some(o)) => o != Less,
        _ => false,
    }
}

/// Whether `actual` (the value at the rule's path, if any) satisfies the
/// operator against `expected` for the rule's type. As in Lunogram, a
/// missing value satisfies only `is not set` and `empty`, and the text
/// operators (`contains`, `starts with`, …) ignore case (its SQL uses
/// `ILIKE`) while `=` does not.
pub fn compare(kind: Kind, op: Operator, actual: Option<&Value>, expected: Option<&Value>) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match op {
        Operator::IsSet => return actual.is_some(),
        Operator::IsNotSet => return actual.is_none(),
        Operator::Empty => {
            return match actual {
                Option::None => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(_) => false,
            }
        }
        _ => {}
    }
    let (Some(actual), Some(expected)) = (actual, expected) else {
        return false;
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    match kind {
        Kind::Wrapper => false,
        Kind::String => {
            let (Some(a), Some(e)) = (text(actual), text(expected).or_else(|| Some(String::new())))
            else {
                return false;
            };
            let (folded, e_folded) = (a.to_lowercase(), e.to_lowercase());
            match op {
                Operator::Contains => folded.contains(&e_folded),
                Operator::NotContain => !folded.contains(&e_folded),
                Operator::StartsWith => folded.starts_with(&e_folded),
                Operator::NotStartWith => !folded.starts_with(&e_folded),
                Operator::EndsWith => folded.ends_with(&e_folded),
                Operator::Any => list(expected).iter().filter_map(text).any(|x| x == a),
                Operator::None => !list(expected).iter().filter_map(text).any(|x| x == a),
                _ => ordered(op, Some(a.cmp(&e))),
            }
        }
        Kind::Number => {
            let Some(a) = number(actual) else {
                return false;
            };
            match op {
                Operator::Any => list(expected).iter().filter_map(number).any(|x| x == a),
                Operator::None => !list(expected).iter().filter_map(number).any(|x| x == a),
                _ => ordered(op, number(expected).and_then(|e| a.partial_cmp(&e))),
            }
        }
        Kind::Boolean => match (boolean(actual), boolean(expected)) {
            (Some(a), Some(e)) => ordered(op, Some(a.cmp(&e))),
            _ => false,
        },
        Kind::Date => {
            let (Some(a), Some(e)) = (
                actual.as_str().and_then(parse_date),
                expected.as_str().and_then(parse_date),
            ) else {
                return false;
            };
            match op {
                Operator::SameDay => a.date() == e.date(),
                _ => ordered(op, Some(a.cmp(&e))),
            }
        }
        Kind::Array => {
            let items = list(actual);
            match op {
                Operator::Contains => items.contains(expected),
                Operator::NotContain => !items.contains(expected),
                Operator::Any => list(expected).iter().any(|x| items.contains(x)),
                Operator::None => !list(expected).iter().any(|x| items.contains(x)),
                _ => false,
            }
        }
    }
}

/// The value at `keys` inside `data` (no keys: the whole object).
fn lookup_data<'a>(data: &'a Data, keys: &[String]) -> Option<Cow<'a, Value>> {
    let Some((first, rest)) = keys.split_first() else {
        return Some(Cow::Owned(Value::Object(data.clone())));
    };
    let mut current = data.get(first)?;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(Cow::Borrowed(current))
}

fn lookup<'a>(data: &'a Data, target: &Target) -> Option<Cow<'a, Value>> {
    match target {
        Target::Data(keys) => lookup_data(data, keys),
        Target::Field(_) => Option::None,
    }
}

/// The identifier that stands for a record's single `external_id` (as
/// Lunogram's records have one): the `default` source's, else the first.
fn external_id(identifiers: &[super::identifier::Identifier]) -> Option<Value> {
    identifiers
        .iter()
        .find(|i| i.source == "default")
        .or_else(|| identifiers.first())
        .map(|i| Value::String(i.external_id.clone()))
}

fn organization_value<'a>(org: &'a Organization, target: &Target) -> Option<Cow<'a, Value>> {
    let owned = |s: &str| Some(Cow::Owned(Value::String(s.to_owned())));
    match target {
        Target::Field("name") => org.name.as_deref().and_then(owned),
        Target::Field("external_id") => external_id(&org.identifiers).map(Cow::Owned),
        Target::Field("created_at") => owned(&org.created_at),
        Target::Field("updated_at") => owned(&org.updated_at),
        Target::Field(_) => Option::None,
        Target::Data(keys) => lookup_data(&org.data, keys),
    }
}

fn user_value<'a>(user: &'a User, target: &Target) -> Option<Cow<'a, Value>> {
    let owned = |s: &str| Some(Cow::Owned(Value::String(s.to_owned())));
    match target {
        Target::Field("external_id") => external_id(&user.identifiers).map(Cow::Owned),
        Target::Field("created_at") => owned(&user.created_at),
        Target::Field("updated_at") => owned(&user.updated_at),
        Target::Field(_) => Option::None,
        Target::Data(keys) => lookup_data(&user.data, keys),
    }
}

fn member_value<'a>(m: &'a Membership, target: &Target) -> Option<Cow<'a, Value>> {
    let found = lookup(&m.data, target);
    // The accounts dialect's role answers `.role` when the membership's
    // data has none.
    match (&found, target, &m.role) {
        (Option::None, Target::Data(keys), Some(role)) if keys.len() == 1 && keys[0] == "role" => {
            Some(Cow::Owned(Value::String(role.clone())))
        }
        _ => found,
    }
}

/// One event of an organization's timeline, as a rule reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgEvent {
    pub data: Data,
    pub created_at: String,
}

/// The events of one name read for a rule: the newest in the widest
/// window the rule asks of that name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventsRead {
    pub events: Vec<OrgEvent>,
    /// More events of the name were in the window than
    /// [`MAX_RULE_EVENTS_PER_ORGANIZATION`]: the older ones were not read.
    pub capped: bool,
}

/// What an organization did, as far as the rule reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activity {
    /// `(event name, UTC day YYYY-MM-DD, count)`.
    pub counters: Vec<(String, String, u64)>,
    /// By event name.
    pub events: BTreeMap<String, EventsRead>,
}

/// What one of the user's organizations contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgFacts {
    pub organization: Organization,
    pub membership: Membership,
    /// Shared by every member of the organization.
    pub activity: Arc<Activity>,
}

/// Everything a rule may read about one user.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub user: User,
    pub organizations: Vec<OrgFacts>,
    pub now: OffsetDateTime,
}

/// A reason a rule matched: which organization and which node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
}

/// When a rolling window starts.
pub fn window_start_at(now: OffsetDateTime, period: &Period) -> OffsetDateTime {
    let n = i64::from(period.value);
    let calendar = |year: i64, month0: i64| {
        let year = year + month0.div_euclid(12);
        let month = time::Month::try_from((month0.rem_euclid(12) + 1) as u8)
            .unwrap_or(time::Month::January);
        let day = now.day().min(month.length(year as i32));
        Date::from_calendar_date(year as i32, month, day)
            .map(|d| now.replace_date(d))
            .unwrap_or(now)
    };
    match period.unit {
        Unit::Minute => now - Duration::minutes(n),
        Unit::Hour => now - Duration::hours(n),
        Unit::Day => now - Duration::days(n),
        Unit::Week => now - Duration::weeks(n),
        Unit::Month => calendar(i64::from(now.year()), i64::from(now.month() as u8) - 1 - n),
        Unit::Year => calendar(i64::from(now.year()) - n, i64::from(now.month() as u8) - 1),
    }
}

/// The first day a rolling window reaches in the daily counters (a window
/// starting mid-day counts that whole day).
pub fn window_start(now: OffsetDateTime, period: &Period) -> Date {
    window_start_at(now, period).date()
}

/// What the facts must hold of the organizations' events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reads {
    /// Event names counted whole, each with the first day its widest
    /// window reaches (the daily counters answer).
    pub counters: Vec<(String, Date)>,
    /// Event names whose data the rule reads, each with the start of its
    /// widest window (the events themselves are read).
    pub events: Vec<(String, OffsetDateTime)>,
}

fn widen<T: Ord + Copy>(list: &mut Vec<(String, T)>, name: &str, from: T) {
    match list.iter_mut().find(|(n, _)| n == name) {
        Some((_, widest)) => *widest = (*widest).min(from),
        Option::None => list.push((name.to_owned(), from)),
    }
}

/// Evaluation's state: why a count stayed undecided, if one did.
struct Ctx {
    now: OffsetDateTime,
    undecided: Option<String>,
}

impl EventCount {
    fn holds(&self, org: &Organization, activity: &Activity, ctx: &mut Ctx) -> Tri {
        let frequency = &self.frequency;
        let Some(condition) = &self.condition else {
            let from = window_start(ctx.now, &frequency.period);
            let today = ctx.now.date();
            let total: u64 = activity
                .counters
                .iter()
                .filter(|(event, day, _)| {
                    *event == self.name
                        && Date::parse(
                            day,
                            time::macros::format_description!("[year]-[month]-[day]"),
                        )
                        .is_ok_and(|d| d >= from && d <= today)
                })
                .map(|(_, _, n)| n)
                .sum();
            return Tri::of(ordered(
                frequency.operator,
                Some(total.cmp(&frequency.count)),
            ));
        };
        let from = window_start_at(ctx.now, &frequency.period);
        let read = activity.events.get(&self.name);
        let seen = read.map_or(0, |r| {
            r.events
                .iter()
                .filter(|e| {
                    crate::ids::parse_timestamp(&e.created_at)
                        .is_some_and(|at| at >= from && at <= ctx.now)
                        && condition.holds(e)
                })
                .count() as u64
        });
        if !read.is_some_and(|r| r.capped) {
            return Tri::of(ordered(
                frequency.operator,
                Some(seen.cmp(&frequency.count)),
            ));
        }
        // Past the cap the true count is `seen` or more: decided when
        // every count from `seen` on gives the same answer.
        let decided = match frequency.operator {
            Operator::Ge => (seen >= frequency.count).then_some(true),
            Operator::Gt => (seen > frequency.count).then_some(true),
            Operator::Ne => (seen > frequency.count).then_some(true),
            Operator::Le | Operator::Eq => (seen > frequency.count).then_some(false),
            Operator::Lt => (seen >= frequency.count).then_some(false),
            _ => Option::None,
        };
        match decided {
            Some(answer) => Tri::of(answer),
            Option::None => {
                ctx.undecided.get_or_insert_with(|| {
                    format!(
                        "organization {} has more than {MAX_RULE_EVENTS_PER_ORGANIZATION} `{}` events in the rule's window, and the newest {MAX_RULE_EVENTS_PER_ORGANIZATION} (what one evaluation reads) do not decide the count: shorten frequency.period",
                        org.id, self.name
                    )
                });
                Tri::Unknown
            }
        }
    }
}

impl Pred {
    /// Whether the membership (unknown: `None`, then every membership
    /// condition is unknown) of `org` satisfies it.
    fn holds(
        &self,
        org: &Organization,
        activity: &Activity,
        member: Option<&Membership>,
        ctx: &mut Ctx,
    ) -> Tri {
        match self {
            Pred::All(c) => {
                let mut out = Tri::Yes;
                for p in c {
                    match p.holds(org, activity, member, ctx) {
                        Tri::No => return Tri::No,
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::Yes => {}
                    }
                }
                out
            }
            Pred::Any(c) if c.is_empty() => Tri::Yes,
            Pred::Any(c) => Tri::any(
                c.iter()
                    .map(|p| p.holds(org, activity, member, ctx))
                    .collect::<Vec<_>>(),
            ),
            Pred::Organization(t) => {
                Tri::of(t.passes(organization_value(org, &t.target).as_deref()))
            }
            Pred::Member(t) => match member {
                Some(m) => Tri::of(t.passes(member_value(m, &t.target).as_deref())),
                Option::None => Tri::Unknown,
            },
            Pred::Events(count) => count.holds(org, activity, ctx),
        }
    }

    fn visit<'a>(&'a self, out: &mut dyn FnMut(&'a Pred)) {
        out(self);
        if let Pred::All(c) | Pred::Any(c) = self {
            for p in c {
                p.visit(out);
            }
        }
    }

    fn mentions(&self, wanted: fn(&Pred) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |p| found |= wanted(p));
        found
    }
}

impl Node {
    fn visit<'a>(&'a self, out: &mut dyn FnMut(&'a Exists)) {
        match self {
            Node::All(c) | Node::Any(c) => c.iter().for_each(|n| n.visit(out)),
            Node::User { .. } => {}
            Node::Exists(e) => out(e),
        }
    }

    /// Whether the node holds; when it does, `reasons` gains the leaves
    /// that made it hold (an organization node names every organization
    /// that satisfies it), and nothing from branches that failed.
    fn holds(&self, facts: &Facts, ctx: &mut Ctx, reasons: &mut Vec<Reason>) -> Tri {
        let mark = reasons.len();
        match self {
            Node::All(children) => {
                let mut out = Tri::Yes;
                for c in children {
                    match c.holds(facts, ctx, reasons) {
                        Tri::No => {
                            reasons.truncate(mark);
                            return Tri::No;
                        }
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::Yes => {}
                    }
                }
                out
            }
            Node::Any(children) if children.is_empty() => Tri::Yes,
            Node::Any(children) => {
                let mut out = Tri::No;
                for c in children {
                    match c.holds(facts, ctx, reasons) {
                        Tri::Yes => return Tri::Yes,
                        Tri::Unknown => out = Tri::Unknown,
                        Tri::No => {}
                    }
                    reasons.truncate(mark);
                }
                out
            }
            Node::User { node, test } => {
                let hit = test.passes(user_value(&facts.user, &test.target).as_deref());
                if hit {
                    reasons.push(Reason {
                        node: node.clone(),
                        organization_id: Option::None,
                    });
                }
                Tri::of(hit)
            }
            Node::Exists(e) => {
                let mut unknown = false;
                for o in &facts.organizations {
                    match e
                        .pred
                        .holds(&o.organization, &o.activity, Some(&o.membership), ctx)
                    {
                        Tri::Yes => reasons.push(Reason {
                            node: e.node.clone(),
                            organization_id: Some(o.organization.id.to_string()),
                        }),
                        Tri::Unknown => unknown = true,
                        Tri::No => {}
                    }
                }
                if reasons.len() > mark {
                    Tri::Yes
                } else if unknown {
                    Tri::Unknown
                } else {
                    Tri::No
                }
            }
        }
    }

    /// See [`Segment::narrowing`].
    fn narrowing(&self) -> Narrowing<'_> {
        match self {
            Node::All(children) => {
                // The child whose gates filter organizations best (no
                // gates at all: the child never holds, nobody can match).
                let rank = |g: &[Gate<'_>]| g.iter().map(Gate::rank).min().unwrap_or(u8::MAX);
                let mut best: Option<Vec<Gate<'_>>> = Option::None;
                for child in children {
                    if let Narrowing::MembersOf(gates) = child.narrowing() {
                        if best.as_deref().is_none_or(|b| rank(&gates) > rank(b)) {
                            best = Some(gates);
                        }
                    }
                }
                best.map_or(Narrowing::Everyone, Narrowing::MembersOf)
            }
            Node::Any(children) if children.is_empty() => Narrowing::Everyone,
            Node::Any(children) => {
                let mut all = Vec::new();
                for child in children {
                    match child.narrowing() {
                        Narrowing::Everyone => return Narrowing::Everyone,
                        Narrowing::MembersOf(gates) => all.extend(gates),
                    }
                }
                Narrowing::MembersOf(all)
            }
            Node::User { .. } => Narrowing::Everyone,
            Node::Exists(e) => Narrowing::MembersOf(vec![Gate(e)]),
        }
    }
}

impl Segment {
    /// Whether the rule selects the user; the reasons when it does. A
    /// 422 `limit_exceeded` when an organization's events past
    /// [`MAX_RULE_EVENTS_PER_ORGANIZATION`] would decide.
    pub fn evaluate(&self, facts: &Facts) -> Result<(bool, Vec<Reason>), Error> {
        let mut ctx = Ctx {
            now: facts.now,
            undecided: Option::None,
        };
        let mut reasons = Vec::new();
        match self.root.holds(facts, &mut ctx, &mut reasons) {
            Tri::Yes => Ok((true, reasons)),
            Tri::No => Ok((false, Vec::new())),
            Tri::Unknown => Err(Error::LimitExceeded(ctx.undecided.unwrap_or_else(|| {
                "the organizations' events do not decide the rule".to_owned()
            }))),
        }
    }

    fn existential(&self) -> Vec<&Exists> {
        let mut out = Vec::new();
        self.root.visit(&mut |e| out.push(e));
        out
    }

    /// What the rule reads of the organizations' events.
    pub fn reads(&self, now: OffsetDateTime) -> Reads {
        let mut reads = Reads::default();
        for e in self.existential() {
            e.pred.visit(&mut |p| {
                if let Pred::Events(count) = p {
                    match count.condition {
                        Option::None => widen(
                            &mut reads.counters,
                            &count.name,
                            window_start(now, &count.frequency.period),
                        ),
                        Some(_) => widen(
                            &mut reads.events,
                            &count.name,
                            window_start_at(now, &count.frequency.period),
                        ),
                    }
                }
            });
        }
        reads
    }

    /// Whether any node reads organizations, memberships or events (a
    /// tree of user conditions alone needs none of them).
    pub fn reads_organizations(&self) -> bool {
        !self.existential().is_empty()
    }

    /// How many nodes hold through memberships. When the narrowing's gates
    /// are all of them, the memberships the gates admit are all the facts
    /// the tree can use.
    pub fn organization_nodes(&self) -> usize {
        self.existential().len()
    }

    /// Which users the tree can select at all — what lets a whole-project
    /// evaluation start from organizations instead of every user. Every
    /// organization node is existential over the user's memberships, so
    /// a user without an organization fails it; `and` needs only one of
    /// its children's gates, `or` needs one of all of them.
    pub fn narrowing(&self) -> Narrowing<'_> {
        self.root.narrowing()
    }
}

/// The users a rule tree can select (see [`Segment::narrowing`]).
#[derive(Debug, PartialEq)]
pub enum Narrowing<'a> {
    /// A user without organizations may match: every user is a candidate.
    Everyone,
    /// Only a user with a membership that one of these gates admits can
    /// match (none: nobody).
    MembersOf(Vec<Gate<'a>>),
}

/// An organization node seen as a filter on (organization, membership)
/// pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate<'a>(&'a Exists);

impl Gate<'_> {
    /// How well the gate filters organizations: by the record (2, free),
    /// by the events (1, reads per organization), not at all (0,
    /// memberships only).
    pub fn rank(&self) -> u8 {
        if self.0.pred.mentions(|p| matches!(p, Pred::Organization(_))) {
            2
        } else if self.counts_events() {
            1
        } else {
            0
        }
    }

    /// Whether the gate reads the organizations' events.
    pub fn counts_events(&self) -> bool {
        self.0.pred.mentions(|p| matches!(p, Pred::Events(_)))
    }

    /// Whether some membership of the organization may pass (`activity`
    /// is read only by gates that count events).
    pub fn admits_organization(
        &self,
        org: &Organization,
        activity: &Activity,
        now: OffsetDateTime,
    ) -> bool {
        let mut ctx = Ctx {
            now,
            undecided: Option::None,
        };
        self.0.pred.holds(org, activity, Option::None, &mut ctx) != Tri::No
    }

    /// Whether this membership of the organization may pass (an undecided
    /// count passes: the evaluation that follows refuses it).
    pub fn admits(
        &self,
        org: &Organization,
        activity: &Activity,
        membership: &Membership,
        now: OffsetDateTime,
    ) -> bool {
        let mut ctx = Ctx {
            now,
            undecided: Option::None,
        };
        self.0.pred.holds(org, activity, Some(membership), &mut ctx) != Tri::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn rule(v: Value) -> Segment {
        let r: Rule = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        r.compile().unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn refusal(v: Value) -> String {
        match serde_json::from_value::<Rule>(v.clone()) {
            Ok(r) => r
                .compile()
                .err()
                .unwrap_or_else(|| panic!("{v} compiles"))
                .to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn holds(segment: &Segment, facts: &Facts) -> bool {
        segment.evaluate(facts).unwrap().0
    }

    fn org_is(path: &str, value: &str) -> Value {
        json!({"type": "string", "group": "organization", "path": path, "operator": "=", "value": value})
    }

    fn member_is(path: &str, value: &str) -> Value {
        json!({"type": "string", "group": "organization_user", "path": path, "operator": "=", "value": value})
    }

    fn wrapper(operator: &str, children: Vec<Value>) -> Value {
        json!({"type": "wrapper", "group": "parent", "operator": operator, "children": children})
    }

    /// Lunogram's organization event rule.
    fn did(name: &str, count: u64, op: &str, unit: &str, value: u32) -> Value {
        json!({"uuid": "6f1c0c4e-0000-4000-8000-000000000001", "type": "wrapper", "group": "organization_event",
            "path": "", "value": name,
            "frequency": {"count": count, "operator": op, "period": {"type": "rolling", "unit": unit, "value": value}},
            "children": [], "user_match": {"type": "all"}})
    }

    #[test]
    fn every_operator_and_type() {
        use Kind::*;
        use Operator::*;
        let j = |v: Value| Some(v);
        // (type, operator, value at the path, rule value, matches)
        type Case = (Kind, Operator, Option<Value>, Option<Value>, bool);
        let cases: Vec<Case> = vec![
            (String, Eq, j(json!("pro")), j(json!("pro")), true),
            (String, Eq, j(json!("pro")), j(json!("free")), false),
            (String, Ne, j(json!("pro")), j(json!("free")), true),
            (String, Ne, Option::None, j(json!("free")), false),
            (String, NotContain, Option::None, j(json!("x")), false),
            (String, Eq, j(json!("Pro")), j(json!("pro")), false),
            (
                String,
                Contains,
                j(json!("Enterprise")),
                j(json!("TERP")),
                true,
            ),
            (
                String,
                StartsWith,
                j(json!("Enterprise")),
                j(json!("ent")),
                true,
            ),
            (String, Lt, j(json!("a")), j(json!("b")), true),
            (String, Ge, j(json!("a")), j(json!("b")), false),
            (
                String,
                Contains,
                j(json!("enterprise")),
                j(json!("terp")),
                true,
            ),
            (
                String,
                NotContain,
                j(json!("enterprise")),
                j(json!("terp")),
                false,
            ),
            (
                String,
                StartsWith,
                j(json!("enterprise")),
                j(json!("ent")),
                true,
            ),
            (
                String,
                NotStartWith,
                j(json!("enterprise")),
                j(json!("ent")),
                false,
            ),
            (
                String,
                EndsWith,
                j(json!("enterprise")),
                j(json!("rise")),
                true,
            ),
            (String, Any, j(json!("b")), j(json!(["a", "b"])), true),
            (String, None, j(json!("c")), j(json!(["a", "b"])), true),
            (String, IsSet, j(json!("")), Option::None, true),
            (String, IsNotSet, Option::None, Option::None, true),
            (String, IsNotSet, j(json!(null)), Option::None, true),
            (String, Empty, j(json!("")), Option::None, true),
            (String, Empty, j(json!("x")), Option::None, false),
            (Number, Eq, j(json!(250)), j(json!(250.0)), true),
            (Number, Gt, j(json!(120000)), j(json!(50000)), true),
            (Number, Gt, j(json!(50000)), j(json!(50000)), false),
            (Number, Ge, j(json!(50000)), j(json!(50000)), true),
            (Number, Lt, j(json!("10")), j(json!(11)), true),
            (Number, Le, j(json!(12)), j(json!(11)), false),
            (Number, Ne, j(json!(1)), j(json!(2)), true),
            (Number, Any, j(json!(2)), j(json!([1, 2])), true),
            (Number, None, j(json!(3)), j(json!([1, 2])), true),
            (Number, Gt, j(json!("many")), j(json!(1)), false),
            (Boolean, Eq, j(json!(true)), j(json!(true)), true),
            (Boolean, Eq, j(json!("false")), j(json!(false)), true),
            (Boolean, Ne, j(json!(true)), j(json!(false)), true),
            (Boolean, Eq, j(json!(1)), j(json!(true)), false),
            (
                Date,
                Lt,
                j(json!("2026-01-01T00:00:00Z")),
                j(json!("2026-01-02")),
                true,
            ),
            (
                Date,
                Gt,
                j(json!("2026-01-02T00:00:00.001Z")),
                j(json!("2026-01-02")),
                true,
            ),
            (
                Date,
                Eq,
                j(json!("2026-01-02T01:00:00+01:00")),
                j(json!("2026-01-02")),
                true,
            ),
            (
                Date,
                SameDay,
                j(json!("2026-01-02T23:59:59Z")),
                j(json!("2026-01-02T00:00:00Z")),
                true,
            ),
            (
                Date,
                SameDay,
                j(json!("2026-01-03T00:00:00Z")),
                j(json!("2026-01-02")),
                false,
            ),
            (
                Date,
                Ge,
                j(json!("not a date")),
                j(json!("2026-01-02")),
                false,
            ),
            (
                Array,
                Contains,
                j(json!(["sso", "api"])),
                j(json!("sso")),
                true,
            ),
            (
                Array,
                NotContain,
                j(json!(["sso", "api"])),
                j(json!("audit")),
                true,
            ),
            (
                Array,
                Any,
                j(json!(["sso", "api"])),
                j(json!(["audit", "api"])),
                true,
            ),
            (
                Array,
                None,
                j(json!(["sso", "api"])),
                j(json!(["audit"])),
                true,
            ),
            (Array, Empty, j(json!([])), Option::None, true),
            (Array, IsSet, j(json!([])), Option::None, true),
        ];
        for (kind, op, actual, expected, want) in cases {
            assert_eq!(
                compare(kind, op, actual.as_ref(), expected.as_ref()),
                want,
                "{kind:?} {op:?} {actual:?} {expected:?}"
            );
        }
    }

    #[test]
    fn paths_read_record_fields_or_custom_data() {
        assert_eq!(parse_path(".plan").unwrap(), ["plan"]);
        assert_eq!(
            parse_path(".data['purchase agreement'].value").unwrap(),
            ["data", "purchase agreement", "value"]
        );
        assert_eq!(
            parse_path(r#".data["user info"].name"#).unwrap(),
            ["data", "user info", "name"]
        );
        assert_eq!(parse_path("['a b'].c").unwrap(), ["a b", "c"]);
        assert_eq!(parse_path(".a.['b']").unwrap(), ["a", "b"]);
        assert_eq!(parse_path(".customer-id").unwrap(), ["customer-id"]);
        for bad in [
            "", "plan", ".", ".a.", ".a..b", ".a['b'", ".a[b]", ".a['']", ".a['b']c", ".a]",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(data_path(".plan").unwrap(), ["plan"]);
        assert_eq!(data_path(".data.plan").unwrap(), ["plan"]);
        assert_eq!(data_path(".data").unwrap(), Vec::<String>::new());
        assert_eq!(data_path(".database").unwrap(), ["database"]);
        assert_eq!(
            record_or_data(".name", ORGANIZATION_FIELDS).unwrap(),
            Target::Field("name")
        );
        assert_eq!(
            record_or_data(".data.name", ORGANIZATION_FIELDS).unwrap(),
            Target::Data(vec!["name".into()])
        );

        let mut f = facts("2026-03-02T12:00:00Z");
        f.organizations[0].organization.data.insert(
            "purchase agreement".into(),
            json!({"value": "signed", "at": "2026-01-05"}),
        );
        f.organizations[0]
            .organization
            .data
            .insert("name".into(), json!("Data name"));
        let cases = [
            (org_is(".plan", "enterprise"), true),
            (org_is(".data.plan", "enterprise"), true),
            (org_is(".data['purchase agreement'].value", "signed"), true),
            (
                org_is(r#".data["purchase agreement"].value"#, "signed"),
                true,
            ),
            (org_is("['purchase agreement'].value", "signed"), true),
            (org_is(".name", "Acme"), true),
            (org_is(".name", "Data name"), false),
            (org_is(".data.name", "Data name"), true),
            (org_is(".external_id", "acme_0"), true),
            (org_is(".external_id", "crm-acme_0"), false),
            (
                json!({"type": "date", "group": "organization", "path": ".created_at", "operator": "is same day", "value": "2026-01-01"}),
                true,
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".data", "operator": "is set"}),
                true,
            ),
            (member_is(".role", "admin"), true),
            (member_is(".data.role", "admin"), true),
            (member_is(".created_at", "2026-01-01T00:00:00.000Z"), false),
            (
                json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
                true,
            ),
            (
                json!({"type": "string", "group": "user", "path": ".data.plan", "operator": "=", "value": "premium"}),
                true,
            ),
            (
                json!({"type": "string", "group": "user", "path": ".external_id", "operator": "=", "value": "user_1"}),
                true,
            ),
            (
                json!({"type": "date", "group": "user", "path": ".created_at", "operator": "<", "value": "2026-02-01"}),
                true,
            ),
        ];
        for (tree, want) in cases {
            assert_eq!(holds(&rule(tree.clone()), &f), want, "{tree}");
        }
    }

    #[test]
    fn invalid_trees_point_at_the_node() {
        let bad = [
            (
                json!({"type": "wrapper", "group": "parent", "operator": "=", "children": []}),
                "rule:",
            ),
            (
                wrapper(
                    "and",
                    vec![
                        json!({"type": "number", "group": "organization", "path": ".arr", "operator": "starts with", "value": 1}),
                    ],
                ),
                "rule.children[0]:",
            ),
            (org_is("plan", "x"), "path"),
            (org_is(".a['b", "x"), "path"),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "operator": "="}),
                "needs a `value`",
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "value": "x"}),
                "needs an `operator`",
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "operator": "any", "value": "x"}),
                "array",
            ),
            (
                json!({"type": "date", "group": "user", "path": ".d", "operator": "<", "value": "soon"}),
                "date",
            ),
            (
                json!({"type": "string", "group": "parent", "path": ".d", "operator": "=", "value": "x"}),
                "wrapper",
            ),
            (
                json!({"type": "string", "group": "user", "path": ".d", "operator": "and", "value": "x"}),
                "wrappers",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "frequency":
                    {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 1}}}),
                "names the event in `value`",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "path": ".plan", "frequency":
                    {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 1}}}),
                "names the event in `value`",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "value": "x"}),
                "needs `frequency`",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "value": "x", "frequency":
                    {"count": 1, "operator": ">=", "period": {"type": "absolute", "unit": "day", "value": 1}}}),
                "rolling",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "value": "x", "frequency":
                    {"count": 1, "operator": "contains", "period": {"type": "rolling", "unit": "day", "value": 1}}}),
                "frequency.operator",
            ),
            (
                json!({"type": "wrapper", "group": "organization_event", "value": "x", "frequency":
                    {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 1}},
                    "children": [org_is(".plan", "x")]}),
                "rule.children[0]: the children of an organization_event",
            ),
            (
                json!({"type": "wrapper", "group": "organization", "operator": "and", "children": []}),
                "at least one organization condition",
            ),
            (
                json!({"type": "wrapper", "group": "organization", "operator": "and", "children": [member_is(".role", "admin")]}),
                "rule.children[0]: the children of an organization rule",
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "x",
                    "user_match": {"type": "conditions", "member_conditions": [
                        {"type": "string", "group": "user", "path": ".role", "operator": "=", "value": "admin"}]}}),
                "rule.user_match.member_conditions[0]",
            ),
            (
                json!({"type": "wrapper", "group": "organization", "operator": "and", "children": [org_is(".plan", "x")],
                    "user_match": {"type": "conditions", "member_conditions":
                        {"type": "string", "group": "user", "path": ".role", "operator": "=", "value": "admin"}}}),
                "rule.user_match.member_conditions:",
            ),
            (
                json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "x",
                    "user_match": {"type": "all"}}),
                "`user_match` belongs on organization rules",
            ),
            (
                json!({"type": "wrapper", "group": "organization", "children": [org_is(".plan", "x")],
                    "user_match": {"type": "some"}}),
                "unknown variant",
            ),
            (
                json!({"type": "string", "group": "user", "path": ".a", "operator": "~", "value": 1}),
                "unknown variant",
            ),
        ];
        for (tree, expected) in bad {
            let err = refusal(tree.clone());
            assert!(err.contains(expected), "{tree}: {err}");
        }
        let mut deep =
            json!({"type": "string", "group": "user", "path": ".a", "operator": "is set"});
        for _ in 0..MAX_DEPTH {
            deep = wrapper("and", vec![deep]);
        }
        assert!(refusal(deep).contains("nest"));
        let wide = wrapper(
            "or",
            (0..MAX_NODES)
                .map(|i| org_is(".plan", &i.to_string()))
                .collect(),
        );
        assert!(refusal(wide).contains("nodes"));
    }

    #[test]
    fn user_events_are_refused_not_false() {
        let user_event = json!({"type": "wrapper", "group": "event", "value": "purchase",
            "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 7}}});
        let leaf = json!({"type": "string", "group": "event", "path": "", "operator": "=", "value": "login"});
        for tree in [
            user_event.clone(),
            leaf.clone(),
            wrapper("or", vec![org_is(".plan", "x"), user_event]),
            wrapper("and", vec![wrapper("or", vec![leaf])]),
        ] {
            let err = refusal(tree.clone());
            assert!(
                err.contains("does not hold") && err.contains("user's own events"),
                "{tree}: {err}"
            );
        }
        // Inside an organization event, group `event` is that event's data.
        let mut inner = did("invoice.paid", 1, ">=", "day", 7);
        inner["children"] = json!([{"type": "number", "group": "event", "path": ".amount", "operator": ">", "value": 1}]);
        rule(inner);
    }

    fn facts(now: &str) -> Facts {
        let t = "2026-01-01T00:00:00.000Z";
        let user = User {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            identifiers: vec![identifier("default", "user_1")],
            data: json!({"plan": "premium"}).as_object().cloned().unwrap(),
            version: 1,
            created_at: t.into(),
            updated_at: t.into(),
        };
        let org = |i: usize, plan: &str, industry: &str| {
            let (mut o, _) =
                Organization::create_named(Uuid::nil(), "Acme", Default::default(), t).unwrap();
            o.id = Uuid::now_v7();
            o.identifiers = vec![
                identifier("crm", &format!("crm-acme_{i}")),
                identifier("default", &format!("acme_{i}")),
            ];
            o.data = json!({"plan": plan, "industry": industry})
                .as_object()
                .cloned()
                .unwrap();
            o
        };
        let member = |role: &str| Membership {
            project_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            user_id: Uuid::nil(),
            data: json!({"role": role}).as_object().cloned().unwrap(),
            role: Option::None,
            version: 1,
            created_at: t.into(),
            updated_at: t.into(),
        };
        let counters = |day: &str, n: u64| {
            Arc::new(Activity {
                counters: vec![("organization.updated".into(), day.into(), n)],
                ..Activity::default()
            })
        };
        Facts {
            user,
            organizations: vec![
                OrgFacts {
                    organization: org(0, "enterprise", "retail"),
                    membership: member("viewer"),
                    activity: counters("2026-02-01", 2),
                },
                OrgFacts {
                    organization: org(1, "free", "technology"),
                    membership: member("admin"),
                    activity: counters("2026-03-01", 1),
                },
            ],
            now: parse_date(now).unwrap(),
        }
    }

    fn identifier(source: &str, external_id: &str) -> super::super::identifier::Identifier {
        super::super::identifier::Identifier {
            id: Uuid::now_v7(),
            source: source.into(),
            external_id: external_id.into(),
            metadata: Option::None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn the_seeds_examples_in_lunogram_json() {
        // Organization 0: enterprise, the user a viewer; 1: free, an admin.
        let f = facts("2026-03-02T12:00:00Z");
        let enterprise = org_is(".plan", "enterprise");
        // "Organization has plan = enterprise": a property rule.
        let plan = rule(
            json!({"type": "wrapper", "group": "organization", "operator": "and",
            "children": [enterprise], "user_match": {"type": "all"}}),
        );
        let (hit, reasons) = plan.evaluate(&f).unwrap();
        assert!(hit);
        assert_eq!(
            reasons,
            [Reason {
                node: "rule".into(),
                organization_id: Some(f.organizations[0].organization.id.to_string())
            }]
        );
        // "... / Members matching role = admin": the admin role is in
        // another organization, so no, in each of Lunogram's shapes.
        let admins = json!({"type": "wrapper", "group": "parent", "operator": "and",
            "children": [member_is(".role", "admin")]});
        let shapes = [
            json!({"type": "wrapper", "group": "organization", "operator": "and", "children": [enterprise],
                "user_match": {"type": "conditions", "member_conditions": admins}}),
            json!({"type": "wrapper", "group": "organization", "children": [enterprise],
                "user_match": {"type": "conditions", "member_conditions": member_is(".role", "admin")}}),
            json!({"type": "wrapper", "group": "organization", "children": [enterprise],
                "user_match": {"type": "conditions", "member_conditions": [member_is(".role", "admin")]}}),
            wrapper("and", vec![enterprise.clone(), member_is(".role", "admin")]),
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
                "user_match": {"type": "conditions", "member_conditions": [member_is(".role", "admin")]}}),
        ];
        for shape in &shapes {
            assert!(!holds(&rule(shape.clone()), &f), "{shape}");
            let mut admin = f.clone();
            admin.organizations[0]
                .membership
                .data
                .insert("role".into(), json!("admin"));
            assert!(holds(&rule(shape.clone()), &admin), "{shape}");
        }
        // Apart, the two conditions hold through different organizations.
        let apart = wrapper(
            "and",
            vec![
                json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [enterprise]}),
                json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [member_is(".role", "admin")]}),
            ],
        );
        assert!(holds(&rule(apart), &f));
        // The same membership for organization conditions alone too.
        let both = wrapper(
            "and",
            vec![
                org_is(".plan", "enterprise"),
                org_is(".industry", "technology"),
            ],
        );
        assert!(!holds(&rule(both), &f));
        let either = wrapper(
            "or",
            vec![org_is(".plan", "enterprise"), member_is(".role", "admin")],
        );
        let (hit, reasons) = rule(either).evaluate(&f).unwrap();
        assert!(hit && reasons.len() == 2, "both memberships");

        // "Organization did organization.updated at least 1 time in the
        // last 30 days".
        assert!(holds(
            &rule(did("organization.updated", 1, ">=", "day", 30)),
            &f
        ));
        assert!(!holds(
            &rule(did("organization.created", 1, ">=", "day", 30)),
            &f
        ));
        // This service's earlier shape: the event named in `path`.
        let earlier = json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
            "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}});
        assert_eq!(
            rule(earlier),
            rule(did("organization.updated", 1, ">=", "day", 30))
        );
        // Members of the matching organizations, narrowed.
        let mut narrowed = did("organization.updated", 2, ">=", "day", 60);
        narrowed["user_match"] =
            json!({"type": "conditions", "member_conditions": member_is(".role", "admin")});
        assert!(
            !holds(&rule(narrowed.clone()), &f),
            "the admin's organization did it once"
        );
        narrowed["frequency"]["count"] = json!(1);
        assert!(holds(&rule(narrowed), &f));

        // "user.plan = premium AND industry = technology AND member role =
        // admin": the user condition makes it a plain `and`.
        let combined = wrapper(
            "and",
            vec![
                json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
                org_is(".industry", "technology"),
                member_is(".role", "admin"),
            ],
        );
        let (hit, reasons) = rule(combined).evaluate(&f).unwrap();
        assert!(hit);
        assert_eq!(reasons.len(), 3);
        assert_eq!(reasons[2].node, "rule.children[2]");

        // `or` is a true union across groups.
        let union = wrapper(
            "or",
            vec![
                json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"}),
                did("organization.updated", 1, ">=", "day", 30),
            ],
        );
        assert!(holds(&rule(union.clone()), &f));
        let mut alone = f.clone();
        alone.organizations.clear();
        assert!(!holds(&rule(union), &alone));
        let premium_or = wrapper(
            "or",
            vec![
                json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
                org_is(".plan", "none such"),
            ],
        );
        assert!(holds(&rule(premium_or), &alone));
        let (miss, reasons) = rule(json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"})).evaluate(&f).unwrap();
        assert!(!miss && reasons.is_empty());

        // A failed branch leaves no reasons behind; an organization node
        // names every organization that satisfies it.
        let branches = wrapper(
            "or",
            vec![
                wrapper(
                    "and",
                    vec![
                        org_is(".plan", "enterprise"),
                        json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"}),
                    ],
                ),
                org_is(".name", "Acme"),
            ],
        );
        let (hit, reasons) = rule(branches).evaluate(&f).unwrap();
        assert!(hit);
        let named: Vec<_> = reasons
            .iter()
            .map(|r| (r.node.as_str(), r.organization_id.clone()))
            .collect();
        assert_eq!(
            named,
            f.organizations
                .iter()
                .map(|o| ("rule.children[1]", Some(o.organization.id.to_string())))
                .collect::<Vec<_>>()
        );

        // Lunogram's wrappers: no operator means `and`; no children, true;
        // node ids are ignored.
        let premium = json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"});
        assert!(holds(
            &rule(json!({"type": "wrapper", "group": "parent", "children": [
            premium, org_is(".plan", "enterprise")]})),
            &f
        ));
        assert!(
            !holds(
                &rule(json!({"type": "wrapper", "group": "parent", "children": [
            org_is(".plan", "enterprise"), org_is(".plan", "free")]})),
                &f
            ),
            "one organization, one plan"
        );
        assert!(holds(&rule(wrapper("or", vec![])), &alone));
        assert!(holds(
            &rule(json!({"type": "wrapper", "group": "parent", "children": null})),
            &alone
        ));
        assert!(holds(
            &rule(
                json!({"uuid": "x", "root_uuid": "y", "parent_uuid": Value::Null,
            "type": "wrapper", "group": "parent", "operator": "and", "path": "", "children": []})
            ),
            &alone
        ));

        // The accounts dialect's role answers `.role` when data has none.
        let mut owner = f.clone();
        owner.organizations[0].membership.data.remove("role");
        owner.organizations[0].membership.role = Some("owner".into());
        let owners = rule(member_is(".role", "owner"));
        assert!(holds(&owners, &owner));
        assert!(!holds(&owners, &f));
    }

    fn event(data: Value, at: &str) -> OrgEvent {
        OrgEvent {
            data: data.as_object().cloned().unwrap(),
            created_at: at.into(),
        }
    }

    #[test]
    fn event_rules_with_children_read_the_events_data() {
        let mut f = facts("2026-03-02T12:00:00Z");
        let paid = |amount: u64, at: &str| event(json!({"amount": amount, "currency": "EUR"}), at);
        let read = EventsRead {
            events: vec![
                paid(300, "2026-03-01T10:00:00.000Z"),
                paid(50, "2026-02-20T10:00:00.000Z"),
                paid(200, "2026-02-01T11:00:00.000Z"),
            ],
            capped: false,
        };
        let mut activity = (*f.organizations[0].activity).clone();
        activity.events.insert("invoice.paid".into(), read);
        f.organizations[0].activity = Arc::new(activity);
        let big = |count: u64, op: &str, days: u32| {
            let mut r = did("invoice.paid", count, op, "day", days);
            r["children"] = json!([
                {"type": "number", "group": "organization_event", "path": ".amount", "operator": ">", "value": 100},
                {"type": "string", "group": "organization_event", "path": ".data.currency", "operator": "=", "value": "EUR"}]);
            r
        };
        assert!(holds(&rule(big(1, ">=", 7)), &f));
        assert!(!holds(&rule(big(2, ">=", 7)), &f), "the 200 is 29 days old");
        assert!(holds(&rule(big(2, ">=", 30)), &f));
        assert!(
            !holds(&rule(big(2, ">=", 29)), &f),
            "exact windows, not whole days"
        );
        assert!(holds(&rule(big(2, "=", 30)), &f));
        assert!(holds(&rule(big(3, "<", 30)), &f));
        assert!(holds(&rule(big(0, "=", 1)), &f), "none in a day: count 0");
        // Nested wrappers among the children keep their operator.
        let mut nested = did("invoice.paid", 3, ">=", "day", 30);
        nested["children"] = json!([{"type": "wrapper", "group": "parent", "operator": "or", "children": [
            {"type": "number", "group": "organization_event", "path": ".amount", "operator": "<", "value": 100},
            {"type": "number", "group": "event", "path": ".amount", "operator": ">", "value": 100}]}]);
        assert!(holds(&rule(nested), &f));
        let segment = rule(big(1, ">=", 7));
        let reads = segment.reads(f.now);
        assert!(reads.counters.is_empty());
        assert_eq!(
            reads.events,
            [(
                "invoice.paid".to_owned(),
                parse_date("2026-02-23T12:00:00Z").unwrap()
            )]
        );
        let both = rule(wrapper(
            "or",
            vec![
                big(1, ">=", 7),
                big(1, ">=", 30),
                did("invoice.paid", 1, ">=", "day", 90),
            ],
        ));
        let reads = both.reads(f.now);
        assert_eq!(
            reads.events[0].1,
            parse_date("2026-01-31T12:00:00Z").unwrap(),
            "the widest window"
        );
        assert_eq!(
            reads.counters,
            [(
                "invoice.paid".to_owned(),
                window_start(
                    f.now,
                    &Period {
                        kind: PeriodKind::Rolling,
                        unit: Unit::Day,
                        value: 90
                    }
                )
            )]
        );
    }

    #[test]
    fn past_the_cap_a_count_is_decided_or_refused() {
        let mut f = facts("2026-03-02T12:00:00Z");
        let read = EventsRead {
            events: (0..5)
                .map(|_| event(json!({"amount": 1}), "2026-03-01T00:00:00.000Z"))
                .collect(),
            capped: true,
        };
        let mut activity = Activity::default();
        activity.events.insert("seat".into(), read);
        f.organizations[0].activity = Arc::new(activity);
        f.organizations.truncate(1);
        let seats = |count: u64, op: &str| {
            let mut r = did("seat", count, op, "day", 30);
            r["children"] = json!([{"type": "number", "group": "organization_event", "path": ".amount", "operator": "=", "value": 1}]);
            rule(r)
        };
        for (count, op, want) in [
            (5, ">=", Some(true)),
            (4, ">", Some(true)),
            (4, "!=", Some(true)),
            (4, "<=", Some(false)),
            (4, "=", Some(false)),
            (5, "<", Some(false)),
            (6, ">=", Option::None),
            (5, "=", Option::None),
            (6, "<", Option::None),
            (5, "!=", Option::None),
        ] {
            match (seats(count, op).evaluate(&f), want) {
                (Ok((hit, _)), Some(want)) => assert_eq!(hit, want, "{op} {count}"),
                (Err(e), Option::None) => {
                    assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                    let detail = e.to_string();
                    assert!(
                        detail.contains(&MAX_RULE_EVENTS_PER_ORGANIZATION.to_string())
                            && detail.contains("`seat`"),
                        "{detail}"
                    );
                }
                (other, want) => panic!("{op} {count}: {other:?}, wanted {want:?}"),
            }
        }
        // Another branch may decide without the undecided count.
        let either = rule(wrapper("or", vec![
            json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"}),
            serde_json::to_value(6).map(|_| {
                let mut r = did("seat", 6, ">=", "day", 30);
                r["children"] = json!([{"type": "number", "group": "organization_event", "path": ".amount", "operator": "=", "value": 1}]);
                r
            }).unwrap(),
        ]));
        assert!(holds(&either, &f));
    }

    #[test]
    fn frequency_windows_at_their_edges() {
        let updated = |count: u64, op: &str, unit: &str, value: u32| {
            rule(did("organization.updated", count, op, unit, value))
        };
        // Counters: 2 on 2026-02-01, 1 on 2026-03-01 (two organizations).
        let f = facts("2026-03-03T00:00:00Z");
        let h = |s: &Segment, f: &Facts| holds(s, f);
        assert!(
            h(&updated(1, ">=", "day", 2), &f),
            "2026-03-01 is the window's first day"
        );
        assert!(
            !h(&updated(1, ">=", "day", 1), &f),
            "one day back misses 2026-03-01"
        );
        assert!(
            h(&updated(2, ">=", "day", 30), &f),
            "30 days back is 2026-02-01"
        );
        assert!(
            !h(&updated(3, ">=", "day", 30), &f),
            "counts are per organization"
        );
        assert!(!h(&updated(2, ">=", "day", 29), &f));
        assert!(
            h(&updated(2, "=", "month", 1), &facts("2026-03-01T10:00:00Z")),
            "a month back is 2026-02-01"
        );
        assert!(!h(
            &updated(2, "=", "month", 1),
            &facts("2026-03-02T10:00:00Z")
        ));
        assert!(
            h(&updated(1, ">=", "hour", 1), &facts("2026-03-01T00:30:00Z")),
            "a sub-day window counts its start day"
        );
        assert!(h(
            &updated(1, ">=", "minute", 30),
            &facts("2026-03-01T23:59:00Z")
        ));
        assert!(h(&updated(2, ">=", "week", 5), &f));
        assert!(!h(&updated(2, ">=", "week", 4), &f));
        assert!(
            h(&updated(0, "=", "year", 1), &facts("2027-03-02T00:00:00Z")),
            "nothing in the last year: count 0"
        );
        assert!(h(&updated(1, "<", "day", 1), &f));
        let start = window_start(
            parse_date("2024-03-31T00:00:00Z").unwrap(),
            &Period {
                kind: PeriodKind::Rolling,
                unit: Unit::Month,
                value: 1,
            },
        );
        assert_eq!(start.to_string(), "2024-02-29", "month ends clamp");
        let start = window_start_at(
            parse_date("2024-02-29T10:00:00Z").unwrap(),
            &Period {
                kind: PeriodKind::Rolling,
                unit: Unit::Year,
                value: 1,
            },
        );
        assert_eq!(start, parse_date("2023-02-28T10:00:00Z").unwrap());
    }

    fn admitted(r: &Segment, f: &Facts) -> bool {
        match r.narrowing() {
            Narrowing::Everyone => true,
            Narrowing::MembersOf(gates) => f.organizations.iter().any(|o| {
                gates.iter().any(|g| {
                    g.admits_organization(&o.organization, &o.activity, f.now)
                        && g.admits(&o.organization, &o.activity, &o.membership, f.now)
                })
            }),
        }
    }

    #[test]
    fn narrowing_keeps_every_user_the_rule_selects() {
        let user = |plan: &str| json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": plan});
        let admin_of = |plan: &str| {
            json!({"type": "wrapper", "group": "organization", "operator": "and", "children": [org_is(".plan", plan)],
            "user_match": {"type": "conditions", "member_conditions": member_is(".role", "admin")}})
        };
        let updated = |count: u64| did("organization.updated", count, ">=", "day", 30);
        let and = |c: Vec<Value>| wrapper("and", c);
        let or = |c: Vec<Value>| wrapper("or", c);
        let leaves = vec![
            user("premium"),
            user("basic"),
            org_is(".plan", "enterprise"),
            org_is(".plan", "free"),
            org_is(".industry", "technology"),
            member_is(".role", "admin"),
            member_is(".role", "viewer"),
            admin_of("enterprise"),
            admin_of("free"),
            updated(1),
            updated(3),
            and(vec![
                org_is(".plan", "enterprise"),
                member_is(".role", "admin"),
            ]),
            or(vec![
                org_is(".plan", "enterprise"),
                member_is(".role", "admin"),
            ]),
        ];
        let mut trees = leaves.clone();
        for a in &leaves {
            for b in &leaves {
                trees.push(and(vec![a.clone(), b.clone()]));
                trees.push(or(vec![a.clone(), b.clone()]));
                trees.push(and(vec![
                    or(vec![a.clone(), b.clone()]),
                    org_is(".name", "Acme"),
                ]));
            }
        }
        let full = facts("2026-03-02T12:00:00Z");
        let mut variants = vec![full.clone()];
        for keep in [0, 1] {
            let mut f = full.clone();
            f.organizations = vec![full.organizations[keep].clone()];
            variants.push(f);
        }
        let mut lonely = full.clone();
        lonely.organizations.clear();
        variants.push(lonely.clone());
        let (mut selected, mut narrowed, mut complete) = (0, 0, 0);
        for tree in &trees {
            let r = rule(tree.clone());
            for f in &variants {
                let hit = holds(&r, f);
                let kept = admitted(&r, f);
                // When every organization node is a gate, the admitted
                // memberships decide alone, reasons and all.
                if let Narrowing::MembersOf(gates) = r.narrowing() {
                    if gates.len() == r.organization_nodes() {
                        let mut only = f.clone();
                        only.organizations.retain(|o| {
                            gates.iter().any(|g| {
                                g.admits_organization(&o.organization, &o.activity, f.now)
                                    && g.admits(&o.organization, &o.activity, &o.membership, f.now)
                            })
                        });
                        assert_eq!(r.evaluate(&only).unwrap(), r.evaluate(f).unwrap(), "{tree}");
                        complete += 1;
                    }
                }
                assert!(!hit || kept, "{tree} selects a user the narrowing drops");
                selected += usize::from(hit);
                narrowed += usize::from(!kept);
            }
        }
        assert!(
            selected > 0 && narrowed > 0 && complete > 0,
            "{selected} {narrowed} {complete}"
        );

        // The shapes: user rules keep everyone; organization rules need a
        // member; `and` picks a gate that reads the record; `or` all.
        assert_eq!(rule(user("premium")).narrowing(), Narrowing::Everyone);
        assert!(!rule(or(vec![user("premium"), user("basic")])).reads_organizations());
        assert!(rule(or(vec![user("premium"), member_is(".role", "admin")])).reads_organizations());
        assert_eq!(
            rule(or(vec![user("premium"), org_is(".plan", "free")])).narrowing(),
            Narrowing::Everyone
        );
        let both = rule(and(vec![
            member_is(".role", "admin"),
            org_is(".plan", "free"),
        ]));
        let Narrowing::MembersOf(gates) = both.narrowing() else {
            panic!("an organization rule narrows")
        };
        assert!(gates.len() == 1 && gates[0].rank() == 2);
        assert_eq!(
            both.organization_nodes(),
            1,
            "one node on the same membership"
        );
        let apart = rule(and(vec![
            and(vec![member_is(".role", "admin")]),
            updated(1),
        ]));
        let Narrowing::MembersOf(gates) = apart.narrowing() else {
            panic!("an event rule narrows")
        };
        assert!(gates.len() == 1 && gates[0].counts_events() && gates[0].rank() == 1);
        assert_eq!(apart.organization_nodes(), 2);
        let either = rule(or(vec![org_is(".plan", "free"), updated(1)]));
        assert!(matches!(either.narrowing(), Narrowing::MembersOf(g) if g.len() == 2));
        assert!(!admitted(&rule(member_is(".role", "admin")), &lonely));
        let enterprise_admin = rule(admin_of("enterprise"));
        assert!(
            !admitted(&enterprise_admin, &full),
            "the enterprise organization's member is a viewer"
        );
        // An `or` on one membership cannot reject an organization by its
        // record alone.
        let one = rule(or(vec![
            org_is(".plan", "none such"),
            member_is(".role", "admin"),
        ]));
        let Narrowing::MembersOf(gates) = one.narrowing() else {
            panic!("narrows")
        };
        let o = &full.organizations[0];
        assert!(gates[0].admits_organization(&o.organization, &o.activity, full.now));
        assert!(!gates[0].admits(&o.organization, &o.activity, &o.membership, full.now));
    }
}
