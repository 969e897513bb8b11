//! PAN guard: refuses full card numbers anywhere in a request (PCI DSS).

/// Shortest and longest card number lengths (ISO/IEC 7812).
const PAN_MIN_DIGITS: usize = 13;
const PAN_MAX_DIGITS: usize = 19;

/// True when `text` holds 13 to 19 digits in a row, optionally separated by single
/// spaces or dashes, that pass the Luhn check.
///
/// Runs are read twice: with separators joining digit groups, and with separators
/// breaking them, so a card number followed by a spaced extra digit is still found.
/// A run longer than 19 digits cannot be one card number, but may hide one: every
/// 13 to 19 digit window of it is checked.
pub fn contains_pan(text: &str) -> bool {
    [true, false]
        .into_iter()
        .flat_map(|join| digit_runs(text, join))
        .any(|run| {
            if run.len() <= PAN_MAX_DIGITS {
                luhn_valid(&run)
            } else {
                (PAN_MIN_DIGITS..=PAN_MAX_DIGITS).any(|len| run.windows(len).any(luhn_valid))
            }
        })
}

/// Splits text into runs of at least 13 digits; with `join_separators`, a single
/// space or dash between two digits continues the run.
fn digit_runs(text: &str, join_separators: bool) -> Vec<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_digit() {
            current.push(b - b'0');
            continue;
        }
        let separator = join_separators && (b == b' ' || b == b'-');
        let joins =
            separator && !current.is_empty() && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !joins && !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs.retain(|r| r.len() >= PAN_MIN_DIGITS);
    runs
}

/// The Luhn (mod 10) check over decimal digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// True when `text` is a masked card number showing at most the first 6 and the last
/// 4 digits, with `*` for every hidden digit (`411111******1111`).
pub fn is_masked_pan(text: &str) -> bool {
    let len = text.len();
    if !(PAN_MIN_DIGITS..=PAN_MAX_DIGITS).contains(&len) {
        return false;
    }
    let bytes = text.as_bytes();
    let leading_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let trailing_digits = bytes
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    leading_digits <= 6
        && trailing_digits <= 4
        && bytes[leading_digits..len - trailing_digits]
            .iter()
            .all(|&b| b == b'*')
        && leading_digits + trailing_digits < len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn well_known_test_cards_are_found_plain_spaced_and_dashed() {
        for text in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "card 5500005555555559 used",
            "378282246310005",
            "%B4111111111111111^DOE/JOHN^2512101?",
            ";4111111111111111=25121010000000000000?",
        ] {
            assert!(contains_pan(text), "{text}");
        }
    }

    #[test]
    fn non_luhn_runs_and_short_numbers_are_allowed() {
        for text in [
            "4111111111111112",
            "633012345678",
            "000001",
            "411111******1111",
            "2026-11-26T09:15:00-05:00",
            "12 34",
        ] {
            assert!(!contains_pan(text), "{text}");
        }
    }

    #[test]
    fn a_card_number_glued_to_more_digits_is_still_found() {
        assert!(contains_pan("4111111111111111 7"));
        assert!(contains_pan("00004111111111111111000"));
    }

    #[test]
    fn double_separators_break_a_run() {
        assert!(!contains_pan("4111  1111  1111  1111"));
    }

    #[test]
    fn masked_pans_show_at_most_six_and_four() {
        assert!(is_masked_pan("411111******1111"));
        assert!(is_masked_pan("************1111"));
        assert!(!is_masked_pan("4111111*****1111"));
        assert!(!is_masked_pan("411111******11111"));
        assert!(!is_masked_pan("4111111111111111"));
        assert!(!is_masked_pan("411111**-***1111"));
    }

    fn with_luhn_check_digit(mut body: Vec<u8>) -> Vec<u8> {
        for check in 0..10 {
            body.push(check);
            if luhn_valid(&body) {
                return body;
            }
            body.pop();
        }
        unreachable!("one check digit always satisfies Luhn")
    }

    proptest! {
        #[test]
        fn any_luhn_valid_number_of_13_to_19_digits_is_found(
            body in proptest::collection::vec(0_u8..10, 12..19),
            sep in proptest::sample::select(vec!["", " ", "-"]),
            prefix in "[a-z ]{0,5}",
        ) {
            let digits = with_luhn_check_digit(body);
            let text: Vec<String> = digits.iter().map(|d| d.to_string()).collect();
            let joined = format!("{prefix}{}", text.join(sep));
            prop_assert!(contains_pan(&joined), "{}", joined);
        }

        #[test]
        fn strings_without_long_digit_runs_never_match(text in "([a-zA-Z*]{1,5}[0-9]{0,12}){0,8}") {
            prop_assert!(!contains_pan(&text));
        }
    }
}
