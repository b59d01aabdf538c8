//! epilot's published client (`@epilot/sdk`, npm) against the tenant
//! family over real HTTP (issue 20, part 2): tests/clients/epilot/check.mjs
//! calls every operation of seed 003 the client offers and fails on any
//! mismatch. `make test` installs the client as the committed
//! package-lock.json pins it (infra/local/common.sh, `ensure_epilot_client`);
//! without node, or without the locked versions installed, this fails.

use std::path::PathBuf;
use std::process::Stdio;

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, session_token, state};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/epilot")
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (make test installs epilot's client: `npm install` in tests/clients/epilot)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every package the lock file pins is installed at that version.
fn assert_installed_as_locked(dir: &std::path::Path) {
    let lock = read_json(&dir.join("package-lock.json"));
    let packages = lock["packages"].as_object().expect("the lock's packages");
    for (path, locked) in packages.iter().filter(|(path, _)| !path.is_empty()) {
        let installed = read_json(&dir.join(path).join("package.json"));
        assert_eq!(
            installed["version"],
            locked["version"],
            "{path} is not installed as locked: run `npm install` in {}",
            dir.display()
        );
    }
    assert!(
        packages.contains_key("node_modules/@epilot/sdk"),
        "the lock pins @epilot/sdk"
    );
}

#[tokio::test]
async fn epilot_client_drives_the_tenant_family() {
    let dir = client_dir();
    assert_installed_as_locked(&dir);

    let state = state().await;
    let p = project(&state).await;
    let accounts = accounts::router(state.clone());
    let ann = session_token(&p, "ann", None);
    let created = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(r#"{"name": "Acme"}"#),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let org = created.body["id"].as_str().expect("an id").to_owned();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    let tenant = tenant::router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, tenant).await });

    let mut node = std::process::Command::new("node");
    node.arg("check.mjs")
        .current_dir(&dir)
        .env("BASE_URL", format!("http://{address}"))
        .env("SECRET_KEY", &p.secret_key)
        .env("SESSION_TOKEN", session_token(&p, "ann", Some(&org)))
        .env("ORG_ID", &org)
        .stdin(Stdio::null());
    // The server runs on this runtime while node waits on a thread of its own.
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .expect("the node thread")
        .unwrap_or_else(|e| panic!("running node (make test needs node on PATH): {e}"));
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the epilot client check failed ({}):\n{stdout}{stderr}",
        output.status
    );
    assert!(
        stdout.contains("every operation as expected"),
        "the check did not run to its end:\n{stdout}{stderr}"
    );
}
