//! The simulator against the real service (in-process on port 0, fresh database on a
//! real Postgres): a clean run exits 0 with every sale accounted, transactions
//! repeated by re-entries and repeated lines are refused and paid once, what terminals
//! forget is closed by the host on time (or left unsettled with auto-close off), and a
//! service that refuses part of the fleet's closes makes it exit 1 with the mismatches
//! listed.

use std::process::Output;

use settlement_api::{Application, Config};

const SECRET: &str = "simulator-test-secret-0123456789abcdef0123456789";

async fn spawn_service(extra: &[(&str, &str)]) -> String {
    let db = settlement_store::fresh_test_database().await.unwrap();
    let vars: Vec<(String, String)> = [
        ("DATABASE_URL", db.as_str()),
        ("AUTH_HS256_SECRET", SECRET),
        (
            "BANK_ACCOUNT_KEYS",
            "test-k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
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
    let shares = "on_time=3,late=1,past_grace=1,out_of_balance=1,lost_response=1,duplicate=1,\
                  skip_number=1,reenter=1,duplicate_lines=1,forgot_to_close=1";
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
        "reenter",
        "duplicate_lines",
        "forgot_to_close",
    ] {
        let (closes, ended_right) = row(&stdout, behaviour);
        assert!(closes > 0, "no {behaviour} close in {stdout}");
        assert_eq!(closes, ended_right, "{behaviour} in {stdout}");
    }
    for label in ["closed lines", "forgotten lines", "never closed, today"] {
        let (auths, ended_right) = feed_row(&stdout, label);
        assert!(auths > 0, "no {label} in {stdout}");
        assert_eq!(auths, ended_right, "{label} in {stdout}");
    }
    assert!(stdout.contains("ledger check: ok"), "{stdout}");
}

#[tokio::test]
async fn what_terminals_forget_the_host_closes_on_time_and_pays_once() {
    let base = spawn_service(&[]).await;
    let shares = "on_time=1,late=1,forgot_to_close=2";
    let out = simulate(&base, &["--shares", shares, "--max-lines", "80"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (forgotten, on_time) = row(&stdout, "forgot_to_close");
    assert!(forgotten >= 5, "{stdout}");
    assert_eq!(forgotten, on_time, "{stdout}");
    for label in [
        "forgotten lines",
        "never closed, due",
        "never closed, today",
    ] {
        let (auths, ended_right) = feed_row(&stdout, label);
        assert_eq!(auths, ended_right, "{label} in {stdout}");
    }
    // The service's scheduler is off here: the simulator's settlement run closed every
    // host batch, and no late close arrived after an auto-close.
    let host = count_after(&stdout, "auto-close: ");
    assert!(host >= 5, "{stdout}");
    assert_eq!(
        count_after(&stdout, " host batches ("),
        host,
        "all by the run: {stdout}"
    );
    assert_eq!(
        count_after(
            &stdout,
            "late closes whose lines the host had closed first: "
        ),
        0
    );
    let (today, _) = feed_row(&stdout, "never closed, today");
    assert_eq!(count_after(&stdout, "unsettled left: "), today, "{stdout}");
    assert_eq!(
        count_after(&stdout, "unmatched_transactions exceptions: "),
        0
    );
    assert!(stdout.contains("ledger check: ok"), "{stdout}");
}

#[tokio::test]
async fn with_auto_close_off_what_terminals_forget_stays_unsettled() {
    let base = spawn_service(&[]).await;
    let shares = "on_time=1,forgot_to_close=1";
    let out = simulate(
        &base,
        &[
            "--shares",
            shares,
            "--max-lines",
            "40",
            "--auto-close",
            "false",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (forgotten, unsettled) = row(&stdout, "forgot_to_close");
    assert!(forgotten > 0, "{stdout}");
    assert_eq!(forgotten, unsettled, "{stdout}");
    assert_eq!(count_after(&stdout, "auto-close: "), 0, "{stdout}");
    let never_closed: u64 = [
        "forgotten lines",
        "never closed, due",
        "never closed, today",
    ]
    .iter()
    .map(|label| feed_row(&stdout, label).0)
    .sum();
    assert_eq!(
        count_after(&stdout, "unsettled left: "),
        never_closed,
        "{stdout}"
    );
}

/// Closes and closes that ended as they must, from the summary row of a behaviour.
fn row(stdout: &str, behaviour: &str) -> (u64, u64) {
    let Some(line) = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(behaviour))
    else {
        return (0, 0);
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
    (number(fields[1]), number(fields[fields.len() - 1]))
}

/// Authorizations and those that ended as they must, from the host feed row `label`.
fn feed_row(stdout: &str, label: &str) -> (u64, u64) {
    let Some(line) = stdout.lines().find(|l| l.starts_with(label)) else {
        return (0, 0);
    };
    let fields: Vec<&str> = line[label.len()..].split_whitespace().collect();
    let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
    (number(fields[0]), number(fields[fields.len() - 1]))
}

/// The number right after `label` in the summary, e.g. `3` in `refused: 3 (`.
fn count_after(stdout: &str, label: &str) -> u64 {
    let at = stdout
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {stdout}"));
    stdout[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count after {label} in {stdout}"))
}

#[tokio::test]
async fn reentered_held_lines_and_repeated_booked_lines_are_refused_and_paid_once() {
    let base = spawn_service(&[]).await;
    // Every terminal's first close books (duplicate_lines needs a booked batch before
    // it) or is held; most closes after it repeat lines or re-enter a held batch.
    let shares = "on_time=1,past_grace=1,reenter=3,duplicate_lines=4";
    let out = simulate(&base, &["--shares", shares, "--max-lines", "60"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (reentries, reentries_right) = row(&stdout, "reenter");
    let (repeats, repeats_right) = row(&stdout, "duplicate_lines");
    assert!(reentries >= 3 && repeats >= 3, "{stdout}");
    assert_eq!(reentries, reentries_right, "{stdout}");
    assert_eq!(repeats, repeats_right, "{stdout}");
    // One refused close each, with its exception: a re-entry's stays open (no batch
    // is stored under its number), a repeat's is resolved by its corrected close.
    let refused = "closes refused as duplicate_transactions: ";
    assert_eq!(
        count_after(&stdout, refused),
        reentries + repeats,
        "{stdout}"
    );
    assert_eq!(
        count_after(&stdout, "their exceptions: "),
        reentries,
        "{stdout}"
    );
    assert_eq!(count_after(&stdout, " open, "), repeats, "{stdout}");
    // A re-entry below a later close shows as a skipped number (the simulator checks
    // the exact numbers per terminal).
    let skipped = "skipped batch numbers reported by the status API: ";
    assert!(count_after(&stdout, skipped) > 0, "{stdout}");
    assert!(stdout.contains("ledger check: ok"), "{stdout}");
    assert!(
        stdout.contains("result: OK, every sale accounted exactly once"),
        "{stdout}"
    );
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
