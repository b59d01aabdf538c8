//! The local scripts keep the keys they write to their owner:
//! `.local/stack.json` (every key of the demo project) and its siblings are
//! written through `write_private` (infra/local/common.sh), which creates
//! them 0600 from the first byte and renames them into place.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `write_private FILE` from common.sh with `input` on stdin, under a
/// umask that would leave any file it creates the ordinary way readable by
/// everyone.
fn write_private(file: &Path, input: &str) -> bool {
    let script = format!(
        "umask 000; source '{}/infra/local/common.sh'; printf '%s' \"$INPUT\" | write_private '{}'",
        root().display(),
        file.display()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("INPUT", input)
        .status()
        .expect("bash runs")
        .success()
}

fn mode(file: &Path) -> u32 {
    std::fs::metadata(file)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn write_private_leaves_a_file_only_its_owner_reads() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("local-files-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let stack = dir.join("stack.json");

    assert!(write_private(&stack, r#"{"secret_key": "sk_first"}"#));
    assert_eq!(mode(&stack), 0o600, "a new file");
    assert_eq!(
        std::fs::read_to_string(&stack).expect("readable by its owner"),
        r#"{"secret_key": "sk_first"}"#
    );

    // A file an older script left world-readable is replaced, mode and all.
    std::fs::set_permissions(&stack, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(write_private(&stack, r#"{"secret_key": "sk_second"}"#));
    assert_eq!(mode(&stack), 0o600, "a replaced file");
    assert_eq!(
        std::fs::read_to_string(&stack).expect("the new content"),
        r#"{"secret_key": "sk_second"}"#
    );

    // A writer that printed nothing (it failed) leaves the file as it was.
    assert!(!write_private(&stack, ""));
    assert_eq!(
        std::fs::read_to_string(&stack).expect("the old content"),
        r#"{"secret_key": "sk_second"}"#
    );

    // No temporary file is left behind.
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("the directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["stack.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file the local scripts put in `.local` that holds keys or
/// credentials (`*.json`, `*.env`) is written by `write_private`: no shell
/// redirection, `tee` or Python `open(…, "w")` writes one.
#[test]
fn the_local_scripts_write_key_files_only_through_write_private() {
    let scripts = std::fs::read_dir(root().join("infra/local"))
        .expect("infra/local")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"));
    let holds_keys = |target: &str| {
        let target = target.trim_matches(|c| c == '"' || c == '\'');
        target.contains(".local/") && (target.ends_with(".json") || target.ends_with(".env"))
    };
    let mut offences = Vec::new();
    for script in scripts {
        let text = std::fs::read_to_string(&script).expect("a script");
        let name = script.file_name().unwrap_or_default().to_string_lossy();
        for (number, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap_or_default();
            if code.trim_start().starts_with('#') {
                continue;
            }
            let written: Vec<&str> = code
                .split(['>', '|'])
                .skip(1)
                .filter_map(|rest| {
                    let rest = rest.trim_start().trim_start_matches("tee ").trim_start();
                    rest.split_whitespace().next()
                })
                .filter(|target| holds_keys(target))
                .collect();
            let python_write = code.contains("open(\".local/") && code.contains("\"w\"");
            if !written.is_empty() || python_write {
                offences.push(format!("{name}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "write these with write_private:\n{}",
        offences.join("\n")
    );
    let dev = std::fs::read_to_string(root().join("infra/local/dev.sh")).expect("dev.sh");
    for file in ["stack.json", "project.json", "functions.env"] {
        assert!(
            dev.contains(&format!("write_private .local/{file}")),
            "dev.sh writes .local/{file} with write_private"
        );
    }
}
