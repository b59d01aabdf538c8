//! Which record an identifier named, remembered per warm container. Only a
//! hint for prefetching: the marker items read in the same call are the
//! authority, so a stale entry costs one extra read, never a wrong answer.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// Entries kept before the cache starts over (bounded memory).
const CAPACITY: usize = 10_000;

/// Keyed by marker partition key, which includes the project and the kind.
#[derive(Debug, Default)]
pub(crate) struct IdentifierCache {
    entries: Mutex<HashMap<String, Uuid>>,
}

impl IdentifierCache {
    /// The record these markers named, if every remembered one named the
    /// same.
    pub(crate) fn recall(&self, markers: impl IntoIterator<Item = String>) -> Option<Uuid> {
        let entries = self.entries.lock().ok()?;
        let mut named = markers.into_iter().filter_map(|m| entries.get(&m).copied());
        let first = named.next()?;
        named.all(|other| other == first).then_some(first)
    }

    /// Records that these markers name `owner` (or nothing).
    pub(crate) fn learn(&self, markers: impl IntoIterator<Item = String>, owner: Option<Uuid>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        for marker in markers {
            match owner {
                Some(id) => entries.insert(marker, id),
                None => entries.remove(&marker),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Vec<String> {
        s.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn recalls_only_an_unambiguous_record() {
        let cache = IdentifierCache::default();
        let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(cache.recall(m("a")), None);
        cache.learn(m("a"), Some(x));
        cache.learn(m("b"), Some(y));
        assert_eq!(cache.recall(m("a,c")), Some(x));
        assert_eq!(cache.recall(m("a,b")), None);
        cache.learn(m("a"), None);
        assert_eq!(cache.recall(m("a")), None);
    }
}
