//! Which organization an identifier named, remembered per warm container.
//! Only a hint for prefetching: the marker items read in the same call are
//! the authority, so a stale entry costs one extra read, never a wrong answer.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::IdentifierKey;
use crate::keys;

/// Entries kept before the cache starts over (bounded memory).
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct IdentifierCache {
    entries: Mutex<HashMap<String, Uuid>>,
}

fn entry(project: Uuid, id: &IdentifierKey) -> String {
    keys::org_identifier_pk(project, &id.source, &id.external_id)
}

impl IdentifierCache {
    /// The organization these identifiers named, if every remembered one
    /// named the same.
    pub(crate) fn recall(&self, project: Uuid, ids: &[&IdentifierKey]) -> Option<Uuid> {
        let entries = self.entries.lock().ok()?;
        let mut named = ids.iter().filter_map(|id| entries.get(&entry(project, id)));
        let first = *named.next()?;
        named.all(|other| *other == first).then_some(first)
    }

    /// Records what the markers said: `found` maps marker keys to orgs.
    pub(crate) fn learn(
        &self,
        project: Uuid,
        ids: &[&IdentifierKey],
        found: &HashMap<String, Uuid>,
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() + ids.len() > CAPACITY {
            entries.clear();
        }
        for id in ids {
            let key = entry(project, id);
            match found.get(&key) {
                Some(org) => entries.insert(key, *org),
                None => entries.remove(&key),
            };
        }
    }

    pub(crate) fn remember(&self, project: Uuid, ids: &[&IdentifierKey], org: Uuid) {
        let found = ids.iter().map(|id| (entry(project, id), org)).collect();
        self.learn(project, ids, &found);
    }

    pub(crate) fn forget(&self, project: Uuid, ids: &[&IdentifierKey]) {
        self.learn(project, ids, &HashMap::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ext: &str) -> IdentifierKey {
        IdentifierKey::parse(None, ext).unwrap()
    }

    #[test]
    fn recalls_only_an_unambiguous_organization() {
        let cache = IdentifierCache::default();
        let p = Uuid::now_v7();
        let (a, b, c) = (id("a"), id("b"), id("c"));
        let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(cache.recall(p, &[&a]), None);
        cache.remember(p, &[&a], x);
        cache.remember(p, &[&b], y);
        assert_eq!(cache.recall(p, &[&a, &c]), Some(x));
        assert_eq!(cache.recall(p, &[&a, &b]), None);
        assert_eq!(cache.recall(Uuid::now_v7(), &[&a]), None, "per project");
        cache.forget(p, &[&a]);
        assert_eq!(cache.recall(p, &[&a]), None);
    }
}
