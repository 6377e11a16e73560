//! The `textbank` binary as a user runs it: `serve` on a fresh SQLite file,
//! clean exit on SIGTERM and SIGINT, `migrate`, and flag errors.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_textbank");

pub(crate) fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("textbank-cli-{name}-{}.db", uuid::Uuid::now_v7()))
}

/// Starts `textbank serve` on a free port and returns it with its address.
pub(crate) fn serve(db: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env(
            "TEXTBANK_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start textbank serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let address = line
        .trim()
        .strip_prefix("textbank listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, address)
}

pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

pub(crate) fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("textbank did not exit within 5 s of the signal");
}

/// Signals the server, checks that it exits cleanly, and removes its
/// database.
pub(crate) fn stop_cleanly(child: Child, signal_name: &str, db: &Path) {
    signal(&child, signal_name);
    assert!(wait_exit(child).success());
    remove(db);
}

pub(crate) fn remove(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = db.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn serve_creates_the_sqlite_database_answers_and_exits_cleanly_on_sigterm() {
    let db = scratch_path("serve");
    assert!(!db.exists());
    let (child, address) = serve(&db);
    assert!(db.exists(), "the database file is created on start");
    let ready = reqwest::get(format!("{address}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    stop_cleanly(child, "TERM", &db);
}

#[tokio::test]
async fn serve_exits_cleanly_on_sigint() {
    let db = scratch_path("sigint");
    let (child, address) = serve(&db);
    assert_eq!(
        reqwest::get(format!("{address}/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    stop_cleanly(child, "INT", &db);
}

#[test]
fn migrate_applies_the_migrations_and_is_idempotent() {
    let db = scratch_path("migrate");
    let url = format!("sqlite://{}", db.display());
    for _ in 0..2 {
        let output = run_ok(&["migrate", "--database-url", &url]);
        assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    }
    remove(&db);
}

#[test]
fn an_unsupported_database_url_fails_with_a_clear_message_and_no_secret() {
    let output = Command::new(BIN)
        .args([
            "migrate",
            "--database-url",
            "mysql://root:hunter2@db/textbank",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_event_store_url_this_build_cannot_use_fails_with_a_clear_message_and_no_secret() {
    let db = scratch_path("event-store");
    // Without the `kurrentdb` feature every event store URL is refused,
    // saying so; with it, only what is not a KurrentDB connection string.
    let url = if cfg!(feature = "kurrentdb") {
        "redis://admin:hunter2@kdb:2113"
    } else {
        "kurrentdb://admin:hunter2@kdb:2113?tls=false"
    };
    let output = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--event-store-url", url])
        .env(
            "TEXTBANK_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = if cfg!(feature = "kurrentdb") {
        "expected kurrentdb://"
    } else {
        "built without KurrentDB support"
    };
    assert!(stderr.contains(expected), "{stderr}");
    assert!(stderr.contains("admin:***@kdb"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    remove(&db);
}

#[test]
fn every_serve_flag_is_documented_with_its_environment_variable() {
    let output = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "TEXTBANK_BIND",
        "TEXTBANK_DATABASE_URL",
        "TEXTBANK_DB_MAX_CONNECTIONS",
        "TEXTBANK_EVENT_STORE_URL",
        "TEXTBANK_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "{var} missing from:\n{help}");
    }
}

#[tokio::test]
async fn admin_create_org_prints_an_owner_key_that_the_server_accepts() {
    let db = scratch_path("create-org");
    let url = format!("sqlite://{}", db.display());
    let args = [
        "admin",
        "create-org",
        "--name",
        "Rivera for Council",
        "--database-url",
        &url,
    ];
    let lines = json_lines(&args);
    assert_eq!(lines.len(), 1, "one JSON line: {lines:?}");
    let created = &lines[0];
    let key = created["owner_key"].as_str().unwrap();
    assert!(created["org_id"].is_string());

    let (child, address) = serve(&db);
    let me = textbank_sms::http_client(std::time::Duration::from_secs(30))
        .unwrap()
        .get(format!("{address}/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["org_id"], created["org_id"]);
    assert_eq!(me["role"], "owner");
    stop_cleanly(child, "TERM", &db);
}

#[test]
fn admin_create_org_refuses_a_blank_name() {
    let db = scratch_path("blank-org");
    let output = Command::new(BIN)
        .args([
            "admin",
            "create-org",
            "--name",
            "   ",
            "--database-url",
            &format!("sqlite://{}", db.display()),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("name must not be empty"));
    remove(&db);
}

/// An org made with `textbank admin create-org` in the database at `url`;
/// its owner key.
pub(crate) fn org_created_by_cli(url: &str, name: &str) -> String {
    let created = json_lines(&["admin", "create-org", "--name", name, "--database-url", url]);
    created[0]["owner_key"]
        .as_str()
        .expect("an owner key")
        .to_owned()
}

/// Runs the binary with `args` (logging warnings only) and checks that it
/// succeeded; its output.
pub(crate) fn run_ok(args: &[&str]) -> std::process::Output {
    let output = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the binary with `args`; its stdout lines as JSON, after checking
/// that it succeeded.
pub(crate) fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    String::from_utf8(run_ok(args).stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn projections_status_and_rebuild_from_the_command_line() {
    let db = scratch_path("projections");
    let url = format!("sqlite://{}", db.display());
    let key = org_created_by_cli(&url, "Rivera");

    let status = json_lines(&["projections", "status", "--database-url", &url]);
    let names: Vec<&str> = status
        .iter()
        .map(|line| line["projector"].as_str().unwrap())
        .collect();
    for expected in ["directory", "inbox", "audit", "campaign_metrics"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let head = status[0]["head"].as_u64().unwrap();
    assert!(head > 0);

    let rebuilt = json_lines(&["projections", "rebuild", "--database-url", &url]);
    assert_eq!(rebuilt.len(), names.len());
    let method = |name: &str| {
        rebuilt
            .iter()
            .find(|line| line["projector"] == name)
            .map(|line| line["method"].as_str().unwrap().to_owned())
    };
    assert_eq!(method("directory").as_deref(), Some("in_place"));
    assert_eq!(method("audit").as_deref(), Some("swapped"));
    let status = json_lines(&["projections", "status", "--database-url", &url]);
    assert!(
        status
            .iter()
            .all(|line| line["position"] == head && line["lag"] == 0),
        "{status:?}"
    );
    json_lines(&["projections", "rebuild", "inbox", "--database-url", &url]);

    let unknown = Command::new(BIN)
        .args(["projections", "rebuild", "nope", "--database-url", &url])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no read model named \"nope\""), "{stderr}");

    // The rebuilt directory still authenticates the owner's key.
    let (child, address) = serve(&db);
    let me = textbank_sms::http_client(Duration::from_secs(30))
        .unwrap()
        .get(format!("{address}/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    stop_cleanly(child, "TERM", &db);
}
