//! PAN guard: refuses full card numbers anywhere in a request (PCI DSS).
//!
//! A digit is any Unicode decimal digit (general category Nd) read as its value: a
//! card number written in full-width (`４１１１…`) or Arabic-Indic (`٤١١١…`) digits
//! is as much a card number as one in ASCII digits.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Shortest and longest card number lengths (ISO/IEC 7812).
const PAN_MIN_DIGITS: usize = 13;
const PAN_MAX_DIGITS: usize = 19;

/// True when `text` holds 13 to 19 digits that pass the Luhn check, written the
/// way card numbers are written: in one group, or in groups separated by single
/// spaces or dashes in one of the groupings of [`is_card_grouping`].
///
/// Text is read as runs of digit groups, a group being digits without separators and
/// a run being groups joined by single spaces or dashes. Every span of whole groups
/// holding 13 to 19 digits in a card grouping is checked, so a spaced card number
/// stays visible when other groups stand before or after it
/// (`1-4111-1111-1111-1111`), while digits that only join into a number across
/// groups no card is written in are left alone: an idempotency key such as
/// `3166-85-1234abcd…` (a terminal, a counter, hex) is no card number, even when
/// its 14 digits pass Luhn. A group of more
/// than 19 digits is no card number and is not searched inside: bank account numbers
/// such as IBANs hold long digit runs, and nearly every one would hide some
/// Luhn-valid window. A UUID in its canonical form (8-4-4-4-12 hexadecimal digits) is
/// an identifier, not a spaced number: its groups are never joined to each other (the
/// service's own ids are time-ordered UUIDs, and for minutes at a time their first
/// groups are all decimal digits), though its first and last groups still join digits
/// outside it.
pub fn contains_pan(text: &str) -> bool {
    // Most request strings (codes, amounts, timestamps, short ids) hold no run long
    // enough for a card number: answered without allocating anything.
    if longest_joined_digits(text) < PAN_MIN_DIGITS {
        return false;
    }
    holds_luhn_valid_span(text)
}

/// The whole search, without the shortcut.
fn holds_luhn_valid_span(text: &str) -> bool {
    digit_runs(&without_uuids(text))
        .iter()
        .any(|groups| card_spans(groups).any(|span| luhn_valid(&span)))
}

/// The most digits in one run of digit groups joined by single spaces or dashes. An
/// upper bound of what [`digit_runs`] finds: it splits runs further (groups glued to
/// letters, UUIDs), never joins more. Reads the text once and allocates nothing.
fn longest_joined_digits(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    let mut after_digit = false;
    for c in text.chars() {
        if decimal_digit_value(c).is_some() {
            run += 1;
            longest = longest.max(run);
            after_digit = true;
        } else if (c == ' ' || c == '-') && after_digit {
            // One separator right after a digit: the run goes on if a digit follows.
            after_digit = false;
        } else {
            run = 0;
            after_digit = false;
        }
    }
    longest
}

/// The value of a decimal digit of any script (Unicode general category Nd), or
/// `None` for any other character. `char::to_digit` knows ASCII digits only, and
/// `char::is_numeric` also takes numerals that are not digits (`Ⅻ`, `½`, `²`).
pub fn decimal_digit_value(c: char) -> Option<u8> {
    if c.is_ascii() {
        return c.to_digit(10).and_then(|d| u8::try_from(d).ok());
    }
    if c.general_category() != GeneralCategory::DecimalNumber {
        return None;
    }
    // Unicode encodes every script's decimal digits as contiguous runs holding 0 to 9
    // in order (a stability policy), some runs side by side (the mathematical digits
    // are five sets of ten): the value is the distance from the run's start, mod 10.
    let code = u32::from(c);
    let from_start = (1..=code)
        .take_while(|back| {
            char::from_u32(code - back)
                .is_some_and(|p| p.general_category() == GeneralCategory::DecimalNumber)
        })
        .count();
    u8::try_from(from_start % 10).ok()
}

/// Byte offsets, from a UUID's start, of its inner dashes.
pub const UUID_INNER_DASHES: [usize; 4] = [8, 13, 18, 23];

/// Where the canonical UUIDs of `text` start (8-4-4-4-12 hexadecimal digits, not part
/// of a longer word). Their inner dashes never join digit groups: such a token is an
/// identifier, even when its last groups are all digits.
pub fn uuid_starts(text: &str) -> Vec<usize> {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    const LEN: usize = 36;
    let bytes = text.as_bytes();
    let is_uuid_at = |start: usize| {
        let Some(candidate) = bytes.get(start..start + LEN) else {
            return false;
        };
        let mut at = 0;
        for (i, &len) in SHAPE.iter().enumerate() {
            if i > 0 {
                if candidate[at] != b'-' {
                    return false;
                }
                at += 1;
            }
            if !candidate[at..at + len].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            at += len;
        }
        let word = |b: &u8| b.is_ascii_alphanumeric();
        let word_before = start > 0 && word(&bytes[start - 1]);
        let word_after = bytes.get(start + LEN).is_some_and(word);
        !word_before && !word_after
    };
    (0..bytes.len().saturating_sub(LEN - 1))
        .filter(|&i| is_uuid_at(i))
        .collect()
}

/// `text` with the inner dashes of every canonical UUID replaced by `_`, which ends
/// digit runs.
fn without_uuids(text: &str) -> std::borrow::Cow<'_, str> {
    let starts = uuid_starts(text);
    if starts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.as_bytes().to_vec();
    for start in starts {
        for dash in UUID_INNER_DASHES {
            out[start + dash] = b'_';
        }
    }
    // Only ASCII dashes were replaced, by ASCII: still UTF-8. Were it not, the original
    // text is judged, which can only refuse more.
    String::from_utf8(out).map_or(std::borrow::Cow::Borrowed(text), std::borrow::Cow::Owned)
}

/// The digits of every span of consecutive groups that holds 13 to 19 digits in a
/// card grouping.
fn card_spans(groups: &[Vec<u8>]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let lengths: Vec<usize> = groups.iter().map(Vec::len).collect();
    (0..groups.len()).flat_map(move |first| {
        let lengths = lengths.clone();
        let mut digits = 0;
        groups[first..]
            .iter()
            .enumerate()
            .map_while(move |(n, group)| {
                digits += group.len();
                (digits <= PAN_MAX_DIGITS).then_some((first + n, digits))
            })
            .filter(move |&(last, digits)| {
                digits >= PAN_MIN_DIGITS && is_card_grouping(&lengths[first..=last])
            })
            .map(move |(last, _)| groups[first..=last].concat())
    })
}

/// True when digit groups of these lengths are a way card numbers are written:
/// - one group (`4111111111111111`);
/// - groups of four from the left, the last holding the rest (`4111 1111 1111 1111`,
///   19 digits as 4-4-4-4-3, 13 as 4-4-5, and a spacing left off part way as in
///   `4111 1111 11111111`);
/// - American Express 4-6-5 and Diners Club 4-6-4 (`3782 822463 10005`);
/// - one digit per group, a number spelled out (`4 1 1 1 …`).
///
/// Separators may be spaces, dashes or both. Any other grouping (`3166-85-12345678`)
/// is not joined into a card number; each of its groups is still one on its own.
pub fn is_card_grouping(lengths: &[usize]) -> bool {
    match lengths {
        [] => false,
        [_] | [4, 6, 4 | 5] => true,
        _ if lengths.iter().all(|&n| n == 1) => true,
        [leading @ .., _] => leading.iter().all(|&n| n == 4),
    }
}

/// Splits text into runs of digit groups: a single space or dash between two digit
/// groups joins them into one run; anything else ends the run. A group glued to a
/// letter (`2a2d` in a UUID, `card4111...`) is part of a word, not of a spaced number:
/// when shorter than four digits it never joins other groups and stands as a run of
/// its own (a card number starts with a full group of at least four).
fn digit_runs(text: &str) -> Vec<Vec<Vec<u8>>> {
    let chars: Vec<char> = text.chars().collect();
    let digit = |i: usize| chars.get(i).copied().and_then(decimal_digit_value);
    let letter = |i: usize| chars.get(i).is_some_and(char::is_ascii_alphabetic);
    let mut runs: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut groups: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit(i).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        let mut group = Vec::new();
        while let Some(d) = digit(i) {
            group.push(d);
            i += 1;
        }
        let glued = group.len() < 4 && ((start > 0 && letter(start - 1)) || letter(i));
        if glued {
            if !groups.is_empty() {
                runs.push(std::mem::take(&mut groups));
            }
            runs.push(vec![group]);
            continue;
        }
        groups.push(group);
        let joins = chars.get(i).is_some_and(|&c| c == ' ' || c == '-') && digit(i + 1).is_some();
        if !joins {
            runs.push(std::mem::take(&mut groups));
        }
    }
    if !groups.is_empty() {
        runs.push(groups);
    }
    runs.retain(|groups| groups.iter().map(Vec::len).sum::<usize>() >= PAN_MIN_DIGITS);
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
    fn uuids_are_identifiers_not_spaced_numbers() {
        // Time-ordered ids of 2026-11-28 04:25 UTC: "22066", "3960" and "7001" would
        // otherwise join into 13 digits, and some such ids pass the Luhn check.
        for id in [
            "01a22066-3960-7001-8123-456789abcdef",
            "01a22066-3960-7012-9001-123456789012",
            "41111111-1111-1111-1111-111111111111",
        ] {
            assert!(!contains_pan(id), "{id}");
            assert!(
                !contains_pan(&format!("/v1/merchants/m1/batches/{id}")),
                "{id}"
            );
            assert!(!contains_pan(&format!("{id},paid,\n")), "{id}");
        }
        // A card number beside a UUID, or in a longer word, is still found.
        assert!(contains_pan(
            "01a22066-3960-7001-8123-456789abcdef 4111 1111 1111 1111"
        ));
        assert!(contains_pan(
            "01a22066-3960-7001-8123-456789abcdef-4111-1111-1111-1111"
        ));
        assert!(contains_pan("x01a22066-3960-7001-8123-4111111111111111"));
        // A card number whose last group is a UUID's first.
        assert!(contains_pan(
            "4111 1111 11111111-2222-3333-4444-555555555555"
        ));
        // The rule's price: digits that are a UUID's last two groups (Luhn-valid
        // 0192999233499954) are read as the identifier they are shaped as.
        assert!(luhn_valid(&[
            0, 1, 9, 2, 9, 9, 9, 2, 3, 3, 4, 9, 9, 9, 5, 4
        ]));
        assert!(!contains_pan("deadbeef-4111-1111-0192-999233499954"));
        assert!(contains_pan("deadbeef-4111-1111-0192-999233499954x"));
    }

    proptest! {
        #[test]
        fn no_uuid_is_taken_for_a_card_number(bits in any::<u128>()) {
            let hex = format!("{bits:032x}");
            let id = format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
            prop_assert!(!contains_pan(&id));
            prop_assert!(!contains_pan(&id.to_uppercase()));
        }
    }

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
    fn a_card_number_beside_more_digit_groups_is_still_found() {
        assert!(contains_pan("4111111111111111 7"));
        assert!(contains_pan("1-4111-1111-1111-1111"));
        assert!(contains_pan("12 4111 1111 1111 1111 34"));
    }

    #[test]
    fn uuids_are_not_card_numbers() {
        // 4111-1111-1111 and the 9 glued to "abc" make a Luhn-valid 13 digits; in a
        // UUID the 9 belongs to the hex word, so they are no card number.
        assert!(luhn_valid(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9]));
        assert!(!contains_pan("deadbeef-4111-1111-1111-9abc12345678"));
        assert!(
            contains_pan("card4111111111111111"),
            "a card number glued to a word is still found"
        );
    }

    #[test]
    fn decimal_digits_of_every_script_count_as_their_value() {
        for (c, value) in [
            ('0', 0),
            ('9', 9),
            ('０', 0),
            ('４', 4),
            ('٤', 4),
            ('۹', 9),
            ('०', 0),
            ('৭', 7),
            ('๓', 3),
            ('𝟎', 0),
            ('𝟗', 9),
            ('𝟘', 0),
            ('𝟿', 9),
            ('🯹', 9),
        ] {
            assert_eq!(decimal_digit_value(c), Some(value), "{c:?}");
        }
        // Numerals that are not decimal digits, and letters.
        for c in ['²', '½', 'Ⅻ', '〇', '①', 'a', 'Ｚ', ' ', '-'] {
            assert_eq!(decimal_digit_value(c), None, "{c:?}");
        }
    }

    #[test]
    fn every_run_of_decimal_digits_holds_whole_sets_of_ten() {
        // What decimal_digit_value relies on: each maximal run of Nd characters is
        // made of sets of 0 to 9, so the value is the distance from the run's start.
        let mut run = 0_u32;
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if c.general_category() == GeneralCategory::DecimalNumber {
                assert_eq!(
                    decimal_digit_value(c),
                    Some(u8::try_from(run % 10).unwrap())
                );
                run += 1;
            } else {
                assert_eq!(run % 10, 0, "a run of decimal digits ends before {c:?}");
                run = 0;
            }
        }
    }

    #[test]
    fn card_numbers_in_other_scripts_digits_are_found() {
        for text in [
            "４０００７９２３６５０４６１６２",
            "４１１１ １１１１ １１１１ １１１１",
            "shop ４１１１-１１１１-１１１１-１１１１",
            "٤١١١١١١١١١١١١١١١",
            "۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱",
            "४१११११११११११११११",
            "https://hooks.example.com/４０００７９２３６５０４６１６２/in",
            // Scripts mixed in one number.
            "4111１１１１١١١١1111",
        ] {
            assert!(contains_pan(text), "{text}");
        }
        // Not Luhn-valid, too short, or not digits at all.
        for text in [
            "４０００７９２３６５０４６１６３",
            "٤١١١١١١١١١١١",
            "²²²²²²²²²²²²²²²²",
            "ⅩⅫⅩⅫⅩⅫⅩⅫⅩⅫⅩⅫⅩⅫ",
        ] {
            assert!(!contains_pan(text), "{text}");
        }
    }

    /// `body` completed with its Luhn check digit, as text.
    fn luhn_number(body: &str) -> String {
        let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
        with_luhn_check_digit(digits)
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    /// `digits` cut into groups of these lengths, joined by `sep`.
    fn grouped(digits: &str, lengths: &[usize], sep: &str) -> String {
        let mut at = 0;
        let groups: Vec<&str> = lengths
            .iter()
            .map(|n| {
                at += n;
                &digits[at - n..at]
            })
            .collect();
        assert_eq!(at, digits.len());
        groups.join(sep)
    }

    #[test]
    fn card_numbers_are_found_in_every_grouping_they_are_written_in() {
        let sixteen = luhn_number("411111111111111");
        let nineteen = luhn_number("622202020011223344");
        for text in [
            grouped(&sixteen, &[4, 4, 4, 4], " "),
            grouped(&sixteen, &[4, 4, 4, 4], "-"),
            "4111 1111-1111 1111".to_owned(),
            grouped(&nineteen, &[4, 4, 4, 4, 3], " "),
            grouped(&nineteen, &[19], ""),
            "4222 2222 22222".to_owned(),
            "3782 822463 10005".to_owned(),
            "3056-930902-5904".to_owned(),
            "4111 1111 11111111".to_owned(),
            "4111 111111111111".to_owned(),
            grouped(&sixteen, &[1; 16], " "),
            format!("ref 12 {} 34", grouped(&sixteen, &[4, 4, 4, 4], "-")),
        ] {
            assert!(contains_pan(&text), "{text}");
        }
    }

    #[test]
    fn digits_joined_across_groups_no_card_is_written_in_are_no_card_number() {
        // An idempotency key: a terminal, a counter, hex. Its 14 digits pass Luhn.
        let digits = luhn_number("3166851234567");
        let key = format!("{}abcdef0123", grouped(&digits, &[4, 2, 8], "-"));
        assert!(luhn_valid(
            &digits.bytes().map(|b| b - b'0').collect::<Vec<_>>()
        ));
        assert!(!contains_pan(&key), "{key}");
        let sixteen = luhn_number("411111111111111");
        for lengths in [
            [2, 2, 2, 2, 2, 2, 2, 2].as_slice(),
            &[5, 5, 6],
            &[4, 2, 10],
            &[3, 13],
        ] {
            let text = grouped(&sixteen, lengths, " ");
            assert!(!contains_pan(&text), "{text}");
        }
        // The number itself in one group is still found, wherever it stands.
        assert!(contains_pan(&format!("3166-85-{sixteen}")));
    }

    #[test]
    fn the_card_groupings_are_few() {
        for lengths in [
            [16].as_slice(),
            &[4, 4, 4, 4],
            &[4, 4, 4, 4, 3],
            &[4, 4, 5],
            &[4, 12],
            &[4, 6, 5],
            &[4, 6, 4],
            &[1; 13],
        ] {
            assert!(is_card_grouping(lengths), "{lengths:?}");
        }
        for lengths in [
            [].as_slice(),
            &[4, 2, 8],
            &[2; 8],
            &[3, 4, 4, 4],
            &[4, 6, 6],
            &[5, 5, 5],
            &[8, 8],
            &[1, 1, 14],
        ] {
            assert!(!is_card_grouping(lengths), "{lengths:?}");
        }
    }

    #[test]
    fn long_account_numbers_are_not_card_numbers() {
        assert!(!contains_pan("DE89370400440532013000"));
        assert!(!contains_pan("00004111111111111111000"));
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
        fn a_card_number_is_found_whatever_script_writes_its_digits(
            body in proptest::collection::vec(0_u8..10, 12..19),
            zeros in proptest::collection::vec(proptest::sample::select(vec!['0', '０', '٠', '۰', '०', '০', '๐', '𝟎']), 19),
            sep in proptest::sample::select(vec!["", " ", "-"]),
        ) {
            let digits = with_luhn_check_digit(body);
            let text: Vec<String> = digits
                .iter()
                .zip(&zeros)
                .map(|(&d, &zero)| char::from_u32(u32::from(zero) + u32::from(d)).unwrap().to_string())
                .collect();
            let joined = text.join(sep);
            prop_assert!(contains_pan(&joined), "{}", joined);
        }

        #[test]
        fn any_luhn_valid_number_of_13_to_19_digits_is_found(
            body in proptest::collection::vec(0_u8..10, 12..19),
            sep in proptest::sample::select(vec!["", " ", "-"]),
            prefix in "([a-z]{0,5} )?",
        ) {
            let digits = with_luhn_check_digit(body);
            let text: Vec<String> = digits.iter().map(|d| d.to_string()).collect();
            let joined = format!("{prefix}{}", text.join(sep));
            prop_assert!(contains_pan(&joined), "{}", joined);
        }

        #[test]
        fn a_grouped_card_number_is_found_between_other_digit_groups(
            body in proptest::collection::vec(0_u8..10, 15..16),
            before in "[0-9]{1,4}",
            after in "[0-9]{1,4}",
            sep in proptest::sample::select(vec![" ", "-"]),
        ) {
            let digits = with_luhn_check_digit(body);
            let pan: String = digits.iter().map(|d| d.to_string()).collect();
            let grouped = [&pan[0..4], &pan[4..8], &pan[8..12], &pan[12..16]].join(sep);
            let text = format!("{before}{sep}{grouped}{sep}{after}");
            prop_assert!(contains_pan(&text), "{}", text);
        }

        #[test]
        fn a_card_number_in_any_card_grouping_and_separators_is_found(
            body in proptest::collection::vec(0_u8..10, 12..19),
            grouping in 0_usize..5,
            separators in proptest::collection::vec(proptest::sample::select(vec![" ", "-"]), 19),
            before in "([a-z]{1,5}[ :]|[0-9]{1,3}[ -])?",
            after in "([ ,.][a-z0-9]{1,5})?",
        ) {
            let digits = with_luhn_check_digit(body);
            let lengths: Vec<usize> = match (grouping, digits.len()) {
                (0, n) => vec![n],
                (1, 15) => vec![4, 6, 5],
                (1, 14) => vec![4, 6, 4],
                (1 | 2, n) => std::iter::repeat_n(4, n / 4)
                    .chain((n % 4 > 0).then_some(n % 4))
                    .collect(),
                (3, n) => vec![4, n - 4],
                (_, n) => vec![1; n],
            };
            prop_assert!(is_card_grouping(&lengths), "{:?}", lengths);
            let mut text = before.clone();
            let mut at = 0;
            for (i, n) in lengths.iter().enumerate() {
                if i > 0 {
                    text.push_str(separators[i]);
                }
                text.extend(digits[at..at + n].iter().map(|d| char::from(b'0' + d)));
                at += n;
            }
            text.push_str(&after);
            prop_assert!(contains_pan(&text), "{}", text);
        }

        #[test]
        fn an_idempotency_key_is_refused_only_for_a_card_number_of_its_own(
            terminal in "[0-9]{4}",
            counter in "[0-9]{2}",
            hex in "[0-9a-f]{8,40}",
        ) {
            let key = format!("{terminal}-{counter}-{hex}");
            prop_assert_eq!(contains_pan(&key), contains_pan(&hex), "{}", key);
        }

        #[test]
        fn the_shortcut_never_lets_a_card_number_through(
            text in "([0-9０-９٠-٩]{1,6}[ -]{0,2}[a-f_é]{0,2}){0,12}",
        ) {
            if longest_joined_digits(&text) < PAN_MIN_DIGITS {
                prop_assert!(!holds_luhn_valid_span(&text), "{}", text);
            }
        }

        #[test]
        fn strings_without_long_digit_runs_never_match(text in "([a-zA-Z*]{1,5}[0-9]{0,12}){0,8}") {
            prop_assert!(!contains_pan(&text));
        }
    }
}
