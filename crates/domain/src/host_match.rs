//! Matching a close against the host: each line that presents a transaction (a sale
//! or a refund) is looked up by its RRN among its terminal's authorizations, and its
//! type, STAN, amount and authorization code must agree with what the host approved.

use std::collections::HashMap;

use serde::Serialize;

use crate::batch::{LineType, TransactionLine};
use crate::host::HostTransactionType;
use crate::presentment::presents;

/// What a merchant's closes do with lines the host did not authorize as presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostMatching {
    /// The batch is booked; the lines are listed on it and in the exceptions.
    #[default]
    Report,
    /// The close is refused (422 `unauthorized_transactions`); nothing is booked.
    Enforce,
}

impl HostMatching {
    /// Every setting.
    pub const ALL: [HostMatching; 2] = [HostMatching::Report, HostMatching::Enforce];

    /// The stable name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            HostMatching::Report => "report",
            HostMatching::Enforce => "enforce",
        }
    }

    /// Parses the stable name.
    pub fn parse(text: &str) -> Option<Self> {
        HostMatching::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// Why a line disagrees with the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchReason {
    /// The host approved no transaction with this RRN for this terminal.
    NoAuthorization,
    /// The host's authorization was reversed (cancelled).
    Reversed,
    /// A sale against a refund's authorization, or the other way round.
    TypeDiffers,
    StanDiffers,
    AmountDiffers,
    /// The line's authorization code differs from the host's, or the line has none.
    AuthCodeDiffers,
}

/// What the host holds for one RRN of a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationOnFile {
    pub rrn: String,
    pub stan: String,
    pub auth_code: String,
    pub transaction_type: HostTransactionType,
    pub amount_minor: i64,
    pub reversed: bool,
}

/// A line the host did not authorize as presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The line's position in the close, from 1.
    pub line_no: usize,
    pub stan: String,
    pub rrn: String,
    pub reasons: Vec<MismatchReason>,
}

/// The lines of a close that disagree with the host, in line order. Lines for which
/// `skip` is true (settled already by a host batch) are not matched again.
pub fn match_lines(
    lines: &[TransactionLine],
    on_file: &[AuthorizationOnFile],
    skip: impl Fn(&TransactionLine) -> bool,
) -> Vec<Mismatch> {
    let by_rrn: HashMap<&str, &AuthorizationOnFile> =
        on_file.iter().map(|a| (a.rrn.as_str(), a)).collect();
    // A sale the close voids was cancelled at the terminal, and the host reversed it:
    // a reversed authorization is what such a line should have.
    let voided: std::collections::HashSet<&str> = lines
        .iter()
        .filter_map(|l| l.original_stan.as_deref())
        .collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| presents(line) && !skip(line))
        .filter_map(|(i, line)| {
            let mut reasons = disagreements(line, by_rrn.get(line.rrn.as_str()).copied());
            if voided.contains(line.stan.as_str()) {
                reasons.retain(|r| *r != MismatchReason::Reversed);
            }
            (!reasons.is_empty()).then(|| Mismatch {
                line_no: i + 1,
                stan: line.stan.clone(),
                rrn: line.rrn.clone(),
                reasons,
            })
        })
        .collect()
}

/// How a line disagrees with its authorization (none when they agree).
fn disagreements(
    line: &TransactionLine,
    auth: Option<&AuthorizationOnFile>,
) -> Vec<MismatchReason> {
    let Some(auth) = auth else {
        return vec![MismatchReason::NoAuthorization];
    };
    let mut out = Vec::new();
    if auth.reversed {
        out.push(MismatchReason::Reversed);
    }
    let same_type = matches!(
        (line.line_type, auth.transaction_type),
        (LineType::Sale, HostTransactionType::Sale)
            | (LineType::Refund, HostTransactionType::Refund)
    );
    if !same_type {
        out.push(MismatchReason::TypeDiffers);
    }
    if line.stan != auth.stan {
        out.push(MismatchReason::StanDiffers);
    }
    if line.amount_minor != auth.amount_minor {
        out.push(MismatchReason::AmountDiffers);
    }
    if line.auth_code.as_deref() != Some(auth.auth_code.as_str()) {
        out.push(MismatchReason::AuthCodeDiffers);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(
        stan: &str,
        rrn: &str,
        line_type: LineType,
        amount: i64,
        code: Option<&str>,
    ) -> TransactionLine {
        TransactionLine {
            stan: stan.into(),
            rrn: rrn.into(),
            line_type,
            amount_minor: amount,
            captured_at: Utc::now(),
            original_stan: (line_type == LineType::Void).then(|| "000001".to_owned()),
            card_brand: None,
            masked_pan: None,
            auth_code: code.map(str::to_owned),
        }
    }

    fn auth(stan: &str, rrn: &str, amount: i64) -> AuthorizationOnFile {
        AuthorizationOnFile {
            rrn: rrn.into(),
            stan: stan.into(),
            auth_code: "A1B2C3".into(),
            transaction_type: HostTransactionType::Sale,
            amount_minor: amount,
            reversed: false,
        }
    }

    #[test]
    fn agreeing_lines_and_voids_match_and_every_disagreement_is_named() {
        let on_file = vec![
            auth("000001", "R00000000001", 1_000),
            auth("000002", "R00000000002", 2_000),
            AuthorizationOnFile {
                reversed: true,
                ..auth("000004", "R00000000004", 4_000)
            },
        ];
        let lines = vec![
            line(
                "000001",
                "R00000000001",
                LineType::Sale,
                1_000,
                Some("A1B2C3"),
            ),
            line("000002", "R00000000002", LineType::Refund, 2_001, None),
            line(
                "000003",
                "R00000000003",
                LineType::Sale,
                3_000,
                Some("A1B2C3"),
            ),
            line(
                "000004",
                "R00000000004",
                LineType::Sale,
                4_000,
                Some("A1B2C3"),
            ),
            line("000005", "R00000000001", LineType::Void, 1_000, None),
        ];
        let found = match_lines(&lines, &on_file, |_| false);
        assert_eq!(
            found,
            vec![
                Mismatch {
                    line_no: 2,
                    stan: "000002".into(),
                    rrn: "R00000000002".into(),
                    reasons: vec![
                        MismatchReason::TypeDiffers,
                        MismatchReason::AmountDiffers,
                        MismatchReason::AuthCodeDiffers
                    ],
                },
                Mismatch {
                    line_no: 3,
                    stan: "000003".into(),
                    rrn: "R00000000003".into(),
                    reasons: vec![MismatchReason::NoAuthorization],
                },
                Mismatch {
                    line_no: 4,
                    stan: "000004".into(),
                    rrn: "R00000000004".into(),
                    reasons: vec![MismatchReason::Reversed],
                },
            ]
        );
        // A reversed sale the close voids matches.
        let mut voided_close = lines.clone();
        voided_close[4].original_stan = Some("000004".into());
        let found = match_lines(&voided_close, &on_file, |l| l.stan != "000004");
        assert!(found.is_empty(), "{found:?}");
        // Lines settled already are not matched again.
        let skipped = match_lines(&lines, &on_file, |l| l.stan != "000001");
        assert!(skipped.is_empty());
    }

    #[test]
    fn the_setting_names_parse_back() {
        for m in HostMatching::ALL {
            assert_eq!(HostMatching::parse(m.as_str()), Some(m));
        }
        assert_eq!(HostMatching::parse("Report"), None);
        assert_eq!(HostMatching::default(), HostMatching::Report);
    }
}
