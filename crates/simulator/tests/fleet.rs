//! The simulator against the real service (in-process on port 0, fresh database on a
//! real Postgres): a clean run exits 0 with every sale accounted, and a service that
//! refuses part of the fleet's closes makes it exit 1 with the mismatches listed.

use std::process::Output;

use settlement_api::{Application, Config};

const SECRET: &str = "simulator-test-secret-0123456789abcdef0123456789";

async fn spawn_service(extra: &[(&str, &str)]) -> String {
    let db = settlement_store::fresh_test_database().await.unwrap();
    let vars: Vec<(String, String)> = [
        ("DATABASE_URL", db.as_str()),
        ("AUTH_HS256_SECRET", SECRET),
        ("SETTLEMENT_LISTEN_ADDR", "127.0.0.1:0"),
        ("METRICS_LISTEN_ADDR", "off"),
        ("SETTLEMENT_RUN_INTERVAL_SECONDS", "0"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::from_lookup(|name| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

async fn simulate(base: &str, extra: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_settlement-sim"))
        .args(["--url", base, "--secret", SECRET, "--seed", "7"])
        .args([
            "--merchants",
            "4",
            "--terminals",
            "16",
            "--closes-per-terminal",
            "3",
        ])
        .args(extra)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fleet_with_every_behaviour_runs_clean_against_the_service() {
    let base = spawn_service(&[]).await;
    let shares =
        "on_time=3,late=1,past_grace=1,out_of_balance=1,lost_response=1,duplicate=1,skip_number=1";
    let out = simulate(&base, &["--shares", shares, "--max-lines", "300"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("result: OK, every sale accounted exactly once"),
        "{stdout}"
    );
    for behaviour in [
        "on_time",
        "late",
        "past_grace",
        "out_of_balance",
        "lost_response",
        "duplicate",
        "skip_number",
    ] {
        assert!(stdout.contains(behaviour), "{behaviour} in {stdout}");
    }
    assert!(stdout.contains("ledger check: ok"), "{stdout}");
}

#[tokio::test]
async fn closes_the_service_refuses_are_reported_and_fail_the_run() {
    // Bodies over 16 KiB are refused: the larger batches never arrive.
    let base = spawn_service(&[("REQUEST_BODY_LIMIT_BYTES", "16384")]).await;
    let out = simulate(&base, &["--min-lines", "5", "--max-lines", "400"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("MISMATCHES"), "{stdout}");
    assert!(stdout.contains("is missing"), "{stdout}");
}
