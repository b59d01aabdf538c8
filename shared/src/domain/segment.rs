//! Segmentation rules (Lunogram's rule-tree format) and their evaluation
//! for one user over the facts the service holds: the user, their
//! organizations, their memberships and the organizations' daily event
//! counters. Pure: the store gathers the facts, this decides.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Duration, OffsetDateTime};

use super::{Membership, Organization, User};
use crate::error::Error;

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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Period {
    #[serde(rename = "type")]
    pub kind: String,
    pub unit: Unit,
    pub value: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Frequency {
    pub count: u64,
    pub operator: Operator,
    pub period: Period,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserMatch {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    #[schema(no_recursion)]
    pub member_conditions: Vec<Rule>,
}

/// One node of a rule tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SegmentRule)]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub group: Group,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Value>,
    // A tree: its schema refers to itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Frequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_match: Option<UserMatch>,
}

fn at(node: &str, problem: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{node}: {problem}"))
}

impl Rule {
    /// Checks the tree; a 400 names the offending node (`rule.children[1]`).
    pub fn validate(&self) -> Result<(), Error> {
        let mut nodes = 0;
        self.check("rule", 1, &mut nodes)
    }

    fn check(&self, node: &str, depth: usize, nodes: &mut usize) -> Result<(), Error> {
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(at(node, format!("a rule has at most {MAX_NODES} nodes")));
        }
        if depth > MAX_DEPTH {
            return Err(at(node, format!("rules nest at most {MAX_DEPTH} deep")));
        }
        let combinator = matches!(self.operator, Operator::And | Operator::Or);
        if (self.kind == Kind::Wrapper || self.group == Group::Parent) != combinator {
            return Err(at(
                node,
                "a wrapper (group parent) takes `and` or `or`, and only a wrapper does",
            ));
        }
        if combinator {
            for (i, child) in self.children.iter().enumerate() {
                child.check(&format!("{node}.children[{i}]"), depth + 1, nodes)?;
            }
            return Ok(());
        }
        if self.group == Group::OrganizationEvent {
            if self.path.as_deref().is_none_or(str::is_empty) {
                return Err(at(
                    node,
                    "an organization_event rule names the event in `path`",
                ));
            }
            if let Some(f) = &self.frequency {
                if f.period.kind != "rolling" {
                    return Err(at(node, "frequency.period.type must be `rolling`"));
                }
                if f.period.value == 0 {
                    return Err(at(node, "frequency.period.value must be at least 1"));
                }
                if !matches!(
                    f.operator,
                    Operator::Eq
                        | Operator::Ne
                        | Operator::Lt
                        | Operator::Le
                        | Operator::Gt
                        | Operator::Ge
                ) {
                    return Err(at(node, "frequency.operator must compare (= != < <= > >=)"));
                }
            }
        } else {
            let path = self.path.as_deref().unwrap_or_default();
            if !path.starts_with('.') || path.len() < 2 {
                return Err(at(node, "`path` must look like `.plan`"));
            }
            if !allowed(self.kind, self.operator) {
                return Err(at(
                    node,
                    format!(
                        "{:?} does not apply to a {:?} value",
                        self.operator, self.kind
                    ),
                ));
            }
            let needs_value = !matches!(
                self.operator,
                Operator::IsSet | Operator::IsNotSet | Operator::Empty
            );
            if needs_value && self.value.is_none() {
                return Err(at(node, "this operator needs a `value`"));
            }
            if matches!(self.operator, Operator::Any | Operator::None)
                && !self.value.as_ref().is_some_and(Value::is_array)
            {
                return Err(at(node, "`any` and `none` take an array `value`"));
            }
            if self.kind == Kind::Date
                && needs_value
                && !matches!(self.operator, Operator::Any | Operator::None)
            {
                let ok = self
                    .value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(parse_date)
                    .is_some();
                if !ok {
                    return Err(at(node, "a date `value` must be a date or date-time"));
                }
            }
        }
        if let Some(m) = &self.user_match {
            if self.group != Group::Organization && self.group != Group::OrganizationEvent {
                return Err(at(node, "`user_match` belongs on organization rules"));
            }
            match m.kind.as_str() {
                "all" => {}
                "conditions" => {
                    for (i, c) in m.member_conditions.iter().enumerate() {
                        let child = format!("{node}.user_match.member_conditions[{i}]");
                        if c.group != Group::OrganizationUser && c.group != Group::Parent {
                            return Err(at(
                                &child,
                                "member conditions are organization_user rules",
                            ));
                        }
                        c.check(&child, depth + 1, nodes)?;
                    }
                }
                other => {
                    return Err(at(
                        node,
                        format!("user_match.type {other:?} is not all or conditions"),
                    ))
                }
            }
        }
        Ok(())
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
/// operator against `expected` for the rule's type.
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
        // A missing value satisfies only the negative operators.
        return matches!(
            op,
            Operator::Ne | Operator::NotContain | Operator::NotStartWith | Operator::None
        );
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    match kind {
        Kind::Wrapper => false,
        Kind::String => {
            let (Some(a), Some(e)) = (text(actual), text(expected).or_else(|| Some(String::new())))
            else {
                return false;
            };
            match op {
                Operator::Contains => a.contains(&e),
                Operator::NotContain => !a.contains(&e),
                Operator::StartsWith => a.starts_with(&e),
                Operator::NotStartWith => !a.starts_with(&e),
                Operator::EndsWith => a.ends_with(&e),
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

/// What one of the user's organizations contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgFacts {
    pub organization: Organization,
    pub membership: Membership,
    /// `(event name, UTC day YYYY-MM-DD, count)`.
    pub counters: Vec<(String, String, u64)>,
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

fn own_or_data<'a>(
    path: &str,
    own: &'a serde_json::Map<String, Value>,
    data: &'a super::Data,
) -> Option<&'a Value> {
    let key = path.trim_start_matches('.');
    own.get(key).or_else(|| data.get(key))
}

fn org_value<'a>(
    path: &str,
    own: &'a serde_json::Map<String, Value>,
    org: &'a Organization,
) -> Option<&'a Value> {
    own_or_data(path, own, &org.data)
}

/// The first day a rolling window reaches (counters are per UTC day, so a
/// window starting mid-day counts that whole day).
pub fn window_start(now: OffsetDateTime, period: &Period) -> Date {
    let n = i64::from(period.value);
    let start = match period.unit {
        Unit::Minute => now - Duration::minutes(n),
        Unit::Hour => now - Duration::hours(n),
        Unit::Day => now - Duration::days(n),
        Unit::Week => now - Duration::weeks(n),
        Unit::Month => {
            let months = i64::from(now.month() as u8) - 1 - n;
            let year = now.year() as i64 + months.div_euclid(12);
            let month = time::Month::try_from((months.rem_euclid(12) + 1) as u8)
                .unwrap_or(time::Month::January);
            let day = now.day().min(month.length(year as i32));
            return Date::from_calendar_date(year as i32, month, day).unwrap_or(now.date());
        }
        Unit::Year => {
            let year = now.year() - period.value as i32;
            let day = now.day().min(now.month().length(year));
            return Date::from_calendar_date(year, now.month(), day).unwrap_or(now.date());
        }
    };
    start.date()
}

impl Rule {
    /// The organization events the tree counts, each with the first day
    /// its window reaches (`None`: all time) — what the facts must hold.
    pub fn event_windows(&self, now: OffsetDateTime) -> Vec<(String, Option<Date>)> {
        let mut out = Vec::new();
        self.collect_events(now, &mut out);
        out
    }

    fn collect_events(&self, now: OffsetDateTime, out: &mut Vec<(String, Option<Date>)>) {
        if self.group == Group::OrganizationEvent {
            if let Some(name) = &self.path {
                let from = self
                    .frequency
                    .as_ref()
                    .map(|f| window_start(now, &f.period));
                out.push((name.clone(), from));
            }
        }
        for child in &self.children {
            child.collect_events(now, out);
        }
    }

    /// Whether the rule selects the user; the reasons when it does.
    pub fn evaluate(&self, facts: &Facts) -> (bool, Vec<Reason>) {
        let mut reasons = Vec::new();
        let matched = self.holds("rule", facts, &mut reasons);
        if !matched {
            reasons.clear();
        }
        (matched, reasons)
    }

    /// Whether the node holds; when it does, `reasons` gains the leaves
    /// that made it hold (an organization leaf names every organization
    /// that satisfies it), and nothing from branches that failed.
    fn holds(&self, node: &str, facts: &Facts, reasons: &mut Vec<Reason>) -> bool {
        let mark = reasons.len();
        let child = |i: usize| format!("{node}.children[{i}]");
        match self.operator {
            Operator::And => {
                let all = self
                    .children
                    .iter()
                    .enumerate()
                    .all(|(i, c)| c.holds(&child(i), facts, reasons));
                if !all {
                    reasons.truncate(mark);
                }
                return all;
            }
            Operator::Or => {
                for (i, c) in self.children.iter().enumerate() {
                    if c.holds(&child(i), facts, reasons) {
                        return true;
                    }
                    reasons.truncate(mark);
                }
                return false;
            }
            _ => {}
        }
        let because = |organization: &Organization| Reason {
            node: node.to_owned(),
            organization_id: Some(organization.id.to_string()),
        };
        match self.group {
            Group::Parent => false,
            Group::User => {
                let own = own_fields(None, &facts.user.created_at, &facts.user.updated_at);
                let value = own_or_data(
                    self.path.as_deref().unwrap_or_default(),
                    &own,
                    &facts.user.data,
                );
                let hit = compare(self.kind, self.operator, value, self.value.as_ref());
                if hit {
                    reasons.push(Reason {
                        node: node.to_owned(),
                        organization_id: None,
                    });
                }
                hit
            }
            Group::OrganizationUser => {
                reasons.extend(
                    facts
                        .organizations
                        .iter()
                        .filter(|o| self.member_holds(&o.membership))
                        .map(|o| because(&o.organization)),
                );
                reasons.len() > mark
            }
            Group::Organization | Group::OrganizationEvent => {
                reasons.extend(
                    facts
                        .organizations
                        .iter()
                        .filter(|o| {
                            self.organization_holds(&o.organization, &o.counters, facts.now)
                                && self.members_match(&o.membership)
                        })
                        .map(|o| because(&o.organization)),
                );
                reasons.len() > mark
            }
        }
    }

    fn member_holds(&self, m: &Membership) -> bool {
        match self.operator {
            Operator::And => self.children.iter().all(|c| c.member_holds(m)),
            Operator::Or => self.children.iter().any(|c| c.member_holds(m)),
            _ => {
                let mut own = own_fields(None, &m.created_at, &m.updated_at);
                // The accounts dialect's role answers `.role` when the
                // membership's data has none.
                if let (Some(role), None) = (&m.role, m.data.get("role")) {
                    own.insert("role".into(), Value::String(role.clone()));
                }
                let value = own_or_data(self.path.as_deref().unwrap_or_default(), &own, &m.data);
                compare(self.kind, self.operator, value, self.value.as_ref())
            }
        }
    }

    fn members_match(&self, m: &Membership) -> bool {
        match &self.user_match {
            Some(um) if um.kind == "conditions" => {
                um.member_conditions.iter().all(|c| c.member_holds(m))
            }
            _ => true,
        }
    }

    fn organization_holds(
        &self,
        org: &Organization,
        counters: &[(String, String, u64)],
        now: OffsetDateTime,
    ) -> bool {
        if self.group == Group::OrganizationEvent {
            let name = self.path.as_deref().unwrap_or_default();
            let (from, op, count) = match &self.frequency {
                Some(f) => (Some(window_start(now, &f.period)), f.operator, f.count),
                None => (Option::None, Operator::Ge, 1),
            };
            let total: u64 = counters
                .iter()
                .filter(|(event, day, _)| {
                    event == name
                        && from.is_none_or(|from| {
                            Date::parse(
                                day,
                                time::macros::format_description!("[year]-[month]-[day]"),
                            )
                            .is_ok_and(|d| d >= from && d <= now.date())
                        })
                })
                .map(|(_, _, n)| n)
                .sum();
            return ordered(op, Some(total.cmp(&count)));
        }
        self.record_holds(org)
    }

    /// An organization rule's condition on the record itself.
    fn record_holds(&self, org: &Organization) -> bool {
        let own = own_fields(org.name.as_deref(), &org.created_at, &org.updated_at);
        let value = org_value(self.path.as_deref().unwrap_or_default(), &own, org);
        compare(self.kind, self.operator, value, self.value.as_ref())
    }

    /// Whether any node reads organizations, memberships or counters (a
    /// tree of user conditions alone needs none of them).
    pub fn reads_organizations(&self) -> bool {
        !matches!(self.group, Group::User | Group::Parent)
            || self.children.iter().any(Rule::reads_organizations)
    }

    /// How many leaves read organizations, memberships or counters. When
    /// the narrowing's gates are all of them, the memberships the gates
    /// admit are all the facts the tree can use.
    pub fn organization_leaves(&self) -> usize {
        match self.operator {
            Operator::And | Operator::Or => {
                self.children.iter().map(Rule::organization_leaves).sum()
            }
            _ => usize::from(!matches!(self.group, Group::User | Group::Parent)),
        }
    }

    /// Which users the tree can select at all — what lets a whole-project
    /// evaluation start from organizations instead of every user. Every
    /// organization node is existential over the user's organizations, so
    /// a user without an organization fails it; `and` needs only one of
    /// its children's gates, `or` needs one of all of them.
    pub fn narrowing(&self) -> Narrowing<'_> {
        match self.operator {
            Operator::And => {
                // The child whose gates filter organizations best (no
                // gates at all: the child never holds, nobody can match).
                let rank = |g: &[Gate<'_>]| g.iter().map(Gate::rank).min().unwrap_or(u8::MAX);
                let mut best: Option<Vec<Gate<'_>>> = None;
                for child in &self.children {
                    if let Narrowing::MembersOf(gates) = child.narrowing() {
                        if best.as_deref().is_none_or(|b| rank(&gates) > rank(b)) {
                            best = Some(gates);
                        }
                    }
                }
                best.map_or(Narrowing::Everyone, Narrowing::MembersOf)
            }
            Operator::Or => {
                let mut all = Vec::new();
                for child in &self.children {
                    match child.narrowing() {
                        Narrowing::Everyone => return Narrowing::Everyone,
                        Narrowing::MembersOf(gates) => all.extend(gates),
                    }
                }
                Narrowing::MembersOf(all)
            }
            _ => match self.group {
                Group::User => Narrowing::Everyone,
                // A leaf wrapper never holds (and does not validate).
                Group::Parent => Narrowing::MembersOf(Vec::new()),
                _ => Narrowing::MembersOf(vec![Gate(self)]),
            },
        }
    }
}

/// The users a rule tree can select (see [`Rule::narrowing`]).
#[derive(Debug, PartialEq)]
pub enum Narrowing<'a> {
    /// A user without organizations may match: every user is a candidate.
    Everyone,
    /// Only a user with a membership that one of these gates admits can
    /// match (none: nobody).
    MembersOf(Vec<Gate<'a>>),
}

/// An organization-level leaf seen as a filter on (organization record,
/// membership) pairs: what it needs of some organization of the user,
/// short of the event counters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gate<'a>(&'a Rule);

impl Gate<'_> {
    /// How well the gate filters organizations: by the record (2, free),
    /// by the event counters (1, one read per organization), not at all
    /// (0, memberships only).
    pub fn rank(&self) -> u8 {
        match self.0.group {
            Group::Organization => 2,
            Group::OrganizationEvent => 1,
            _ => 0,
        }
    }

    /// Whether the gate needs the organizations' event counters.
    pub fn counts_events(&self) -> bool {
        self.0.group == Group::OrganizationEvent
    }

    /// `counters`: the organization's daily counters (see [`OrgFacts`]);
    /// read only by gates that count events.
    pub fn admits_organization(
        &self,
        org: &Organization,
        counters: &[(String, String, u64)],
        now: OffsetDateTime,
    ) -> bool {
        match self.0.group {
            Group::Organization | Group::OrganizationEvent => {
                self.0.organization_holds(org, counters, now)
            }
            _ => true,
        }
    }

    pub fn admits_member(&self, membership: &Membership) -> bool {
        match self.0.group {
            Group::OrganizationUser => self.0.member_holds(membership),
            _ => self.0.members_match(membership),
        }
    }
}

fn own_fields(
    name: Option<&str>,
    created_at: &str,
    updated_at: &str,
) -> serde_json::Map<String, Value> {
    let mut own = serde_json::Map::new();
    if let Some(name) = name {
        own.insert("name".into(), Value::String(name.to_owned()));
    }
    own.insert("created_at".into(), Value::String(created_at.to_owned()));
    own.insert("updated_at".into(), Value::String(updated_at.to_owned()));
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn rule(v: Value) -> Rule {
        let r: Rule = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
        r.validate().unwrap_or_else(|e| panic!("{v}: {e}"));
        r
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
            (String, Ne, Option::None, j(json!("free")), true),
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
    fn invalid_trees_point_at_the_node() {
        let bad = [
            (
                json!({"type": "wrapper", "group": "parent", "operator": "=", "children": []}),
                "rule:",
            ),
            (
                json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
                {"type": "number", "group": "organization", "path": ".arr", "operator": "starts with", "value": 1}]}),
                "rule.children[0]:",
            ),
            (
                json!({"type": "string", "group": "organization", "path": "plan", "operator": "=", "value": "x"}),
                "rule:",
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "operator": "="}),
                "needs a `value`",
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
                json!({"type": "number", "group": "organization_event", "operator": ">=", "value": 1}),
                "path",
            ),
            (
                json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "x",
                    "user_match": {"type": "conditions", "member_conditions": [
                        {"type": "string", "group": "user", "path": ".role", "operator": "=", "value": "admin"}]}}),
                "rule.user_match.member_conditions[0]",
            ),
        ];
        for (tree, expected) in bad {
            let r: Rule = serde_json::from_value(tree.clone()).unwrap();
            let err = r.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{tree}: {err}");
        }
        assert!(serde_json::from_value::<Rule>(
            json!({"type": "string", "group": "user", "path": ".a", "operator": "~", "value": 1})
        )
        .is_err());
        let mut deep =
            json!({"type": "string", "group": "user", "path": ".a", "operator": "is set"});
        for _ in 0..MAX_DEPTH {
            deep = json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [deep]});
        }
        let r: Rule = serde_json::from_value(deep).unwrap();
        assert!(r.validate().is_err());
    }

    fn facts(now: &str) -> Facts {
        let t = "2026-01-01T00:00:00.000Z";
        let user = User {
            id: Uuid::nil(),
            project_id: Uuid::nil(),
            identifiers: vec![],
            data: json!({"plan": "premium"}).as_object().cloned().unwrap(),
            version: 1,
            created_at: t.into(),
            updated_at: t.into(),
        };
        let org = |plan: &str, industry: &str| {
            let (mut o, _) =
                Organization::create_named(Uuid::nil(), "Acme", Default::default(), t).unwrap();
            o.id = Uuid::now_v7();
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
        Facts {
            user,
            organizations: vec![
                OrgFacts {
                    organization: org("enterprise", "retail"),
                    membership: member("viewer"),
                    counters: vec![("organization.updated".into(), "2026-02-01".into(), 2)],
                },
                OrgFacts {
                    organization: org("free", "technology"),
                    membership: member("admin"),
                    counters: vec![("organization.updated".into(), "2026-03-01".into(), 1)],
                },
            ],
            now: parse_date(now).unwrap(),
        }
    }

    #[test]
    fn the_seeds_examples_and_the_same_organization_rule() {
        let f = facts("2026-03-02T12:00:00Z");
        let plan = rule(
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise"}),
        );
        let (hit, reasons) = plan.evaluate(&f);
        assert!(hit);
        assert_eq!(
            reasons[0].organization_id,
            Some(f.organizations[0].organization.id.to_string())
        );
        // plan = enterprise, members matching role = admin: the admin role
        // is in another organization, so no.
        let admin = rule(
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise",
            "user_match": {"type": "conditions", "member_conditions": [
                {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}}),
        );
        assert!(!admin.evaluate(&f).0);
        let updated = rule(
            json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
            "frequency": {"count": 1, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}}),
        );
        assert!(updated.evaluate(&f).0);
        let combined = rule(
            json!({"type": "wrapper", "group": "parent", "operator": "and", "children": [
            {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "premium"},
            {"type": "string", "group": "organization", "path": ".industry", "operator": "=", "value": "technology"},
            {"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "admin"}]}),
        );
        let (hit, reasons) = combined.evaluate(&f);
        assert!(hit);
        assert_eq!(reasons.len(), 3);
        assert_eq!(reasons[2].node, "rule.children[2]");
        let or = rule(
            json!({"type": "wrapper", "group": "parent", "operator": "or", "children": [
            {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"},
            {"type": "wrapper", "group": "parent", "operator": "and", "children": [
                {"type": "string", "group": "organization", "path": ".name", "operator": "=", "value": "Acme"}]}]}),
        );
        assert!(or.evaluate(&f).0, "own fields and nesting");
        let (miss, reasons) = rule(json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"})).evaluate(&f);
        assert!(!miss && reasons.is_empty());

        // A failed branch leaves no reasons behind; an organization leaf
        // names every organization that satisfies it.
        let branches = rule(
            json!({"type": "wrapper", "group": "parent", "operator": "or", "children": [
            {"type": "wrapper", "group": "parent", "operator": "and", "children": [
                {"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": "enterprise"},
                {"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": "basic"}]},
            {"type": "string", "group": "organization", "path": ".name", "operator": "=", "value": "Acme"}]}),
        );
        let (hit, reasons) = branches.evaluate(&f);
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

        // The accounts dialect's role answers `.role` when data has none.
        let mut owner = f.clone();
        owner.organizations[0].membership.data.remove("role");
        owner.organizations[0].membership.role = Some("owner".into());
        let owners = rule(
            json!({"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": "owner"}),
        );
        assert!(owners.evaluate(&owner).0);
        assert!(!owners.evaluate(&f).0);
    }

    #[test]
    fn frequency_windows_at_their_edges() {
        let updated = |count: u64, op: &str, unit: &str, value: u32| {
            rule(
                json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
                "frequency": {"count": count, "operator": op, "period": {"type": "rolling", "unit": unit, "value": value}}}),
            )
        };
        // Counters: 2 on 2026-02-01, 1 on 2026-03-01 (two organizations).
        let f = facts("2026-03-03T00:00:00Z");
        assert!(
            updated(1, ">=", "day", 2).evaluate(&f).0,
            "2026-03-01 is the window's first day"
        );
        assert!(
            !updated(1, ">=", "day", 1).evaluate(&f).0,
            "one day back misses 2026-03-01"
        );
        assert!(
            updated(2, ">=", "day", 30).evaluate(&f).0,
            "30 days back is 2026-02-01"
        );
        assert!(
            !updated(3, ">=", "day", 30).evaluate(&f).0,
            "counts are per organization"
        );
        assert!(!updated(2, ">=", "day", 29).evaluate(&f).0);
        assert!(
            updated(2, "=", "month", 1)
                .evaluate(&facts("2026-03-01T10:00:00Z"))
                .0,
            "a month back is 2026-02-01"
        );
        assert!(
            !updated(2, "=", "month", 1)
                .evaluate(&facts("2026-03-02T10:00:00Z"))
                .0
        );
        assert!(
            updated(1, ">=", "hour", 1)
                .evaluate(&facts("2026-03-01T00:30:00Z"))
                .0,
            "a sub-day window counts its start day"
        );
        assert!(
            updated(1, ">=", "minute", 30)
                .evaluate(&facts("2026-03-01T23:59:00Z"))
                .0
        );
        assert!(updated(2, ">=", "week", 5).evaluate(&f).0);
        assert!(!updated(2, ">=", "week", 4).evaluate(&f).0);
        assert!(
            updated(0, "=", "year", 1)
                .evaluate(&facts("2027-03-02T00:00:00Z"))
                .0,
            "nothing in the last year: count 0"
        );
        assert!(updated(1, "<", "day", 1).evaluate(&f).0);
        let start = window_start(
            parse_date("2024-03-31T00:00:00Z").unwrap(),
            &Period {
                kind: "rolling".into(),
                unit: Unit::Month,
                value: 1,
            },
        );
        assert_eq!(start.to_string(), "2024-02-29", "month ends clamp");
    }

    fn admitted(r: &Rule, f: &Facts) -> bool {
        match r.narrowing() {
            Narrowing::Everyone => true,
            Narrowing::MembersOf(gates) => f.organizations.iter().any(|o| {
                gates.iter().any(|g| {
                    g.admits_organization(&o.organization, &o.counters, f.now)
                        && g.admits_member(&o.membership)
                })
            }),
        }
    }

    #[test]
    fn narrowing_keeps_every_user_the_rule_selects() {
        let user = |plan: &str| json!({"type": "string", "group": "user", "path": ".plan", "operator": "=", "value": plan});
        let org = |field: &str, value: &str| json!({"type": "string", "group": "organization", "path": field, "operator": "=", "value": value});
        let role = |value: &str| json!({"type": "string", "group": "organization_user", "path": ".role", "operator": "=", "value": value});
        let admin_of = |plan: &str| {
            json!({"type": "string", "group": "organization", "path": ".plan", "operator": "=", "value": plan,
            "user_match": {"type": "conditions", "member_conditions": [role("admin")]}})
        };
        let updated = |count: u64| {
            json!({"type": "number", "group": "organization_event", "path": "organization.updated", "operator": "=",
            "frequency": {"count": count, "operator": ">=", "period": {"type": "rolling", "unit": "day", "value": 30}}})
        };
        let and = |c: Vec<Value>| json!({"type": "wrapper", "group": "parent", "operator": "and", "children": c});
        let or = |c: Vec<Value>| json!({"type": "wrapper", "group": "parent", "operator": "or", "children": c});
        let leaves = vec![
            user("premium"),
            user("basic"),
            org(".plan", "enterprise"),
            org(".plan", "free"),
            org(".industry", "technology"),
            role("admin"),
            role("viewer"),
            admin_of("enterprise"),
            admin_of("free"),
            updated(1),
            updated(3),
        ];
        let mut trees = leaves.clone();
        for a in &leaves {
            for b in &leaves {
                trees.push(and(vec![a.clone(), b.clone()]));
                trees.push(or(vec![a.clone(), b.clone()]));
                trees.push(and(vec![
                    or(vec![a.clone(), b.clone()]),
                    org(".name", "Acme"),
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
                let hit = r.evaluate(f).0;
                let kept = admitted(&r, f);
                // When every organization leaf is a gate, the admitted
                // memberships decide alone, reasons and all.
                if let Narrowing::MembersOf(gates) = r.narrowing() {
                    if gates.len() == r.organization_leaves() {
                        let mut only = f.clone();
                        only.organizations.retain(|o| {
                            gates.iter().any(|g| {
                                g.admits_organization(&o.organization, &o.counters, f.now)
                                    && g.admits_member(&o.membership)
                            })
                        });
                        assert_eq!(r.evaluate(&only), r.evaluate(f), "{tree}");
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
        assert!(rule(or(vec![user("premium"), role("admin")])).reads_organizations());
        assert_eq!(
            rule(or(vec![user("premium"), org(".plan", "free")])).narrowing(),
            Narrowing::Everyone
        );
        let both = rule(and(vec![role("admin"), org(".plan", "free")]));
        let Narrowing::MembersOf(gates) = both.narrowing() else {
            panic!("an organization rule narrows")
        };
        assert!(gates.len() == 1 && gates[0].rank() == 2);
        let counted = rule(and(vec![role("admin"), updated(1)]));
        let Narrowing::MembersOf(gates) = counted.narrowing() else {
            panic!("an event rule narrows")
        };
        assert!(gates.len() == 1 && gates[0].counts_events());
        let either = rule(or(vec![org(".plan", "free"), updated(1)]));
        assert!(matches!(either.narrowing(), Narrowing::MembersOf(g) if g.len() == 2));
        assert_eq!(either.organization_leaves(), 2, "both leaves are gates");
        assert_eq!(both.organization_leaves(), 2, "one gate of two leaves");
        assert!(!admitted(&rule(role("admin")), &lonely));
        let enterprise_admin = rule(admin_of("enterprise"));
        assert!(
            !admitted(&enterprise_admin, &full),
            "the enterprise organization's member is a viewer"
        );
    }
}
