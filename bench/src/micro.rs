//! The criterion micro-benchmarks' results (`cargo bench -p bench --bench
//! hot`, run by `make bench` first), read from criterion's own files.

use std::path::{Path, PathBuf};

pub struct Micro {
    pub name: String,
    /// Median time per iteration, nanoseconds.
    pub median_ns: f64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<Micro>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let estimates = path.join("new").join("estimates.json");
        if estimates.is_file() {
            let median = std::fs::read_to_string(&estimates)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["median"]["point_estimate"].as_f64());
            if let Some(median_ns) = median {
                let name = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                out.push(Micro { name, median_ns });
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            walk(&path, root, out);
        }
    }
}

pub fn read() -> Vec<Micro> {
    let root = target_dir().join("criterion");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
