//! The PAN guard on arbitrary text: it never panics, and a Luhn-valid 16-digit card
//! number put anywhere into the text is found.
//!
//! Input: the whole input, read as UTF-8 with invalid bytes replaced, is checked as
//! is. When it is at least `PARAMS_LEN` bytes long, its last `PARAMS_LEN` bytes also
//! choose a card number and how to write it, and it is inserted into the text before
//! them. The insertion keeps to the rules documented on `contains_pan`: the number is
//! a span of whole digit groups (a digit of the text right beside it would lengthen
//! a group and make another number, so a non-digit is put between them), written in
//! a card grouping (one group, groups of four with the rest last, or one digit per
//! group) whose groups are joined by single spaces or dashes, and a first or last
//! group shorter than four digits is kept off letters (such a group glued to a letter
//! is read as part of a word).
//! When the insertion happens to make a canonical UUID whose inner dash falls inside
//! the number, the number is that identifier's groups and is not looked for.

#![no_main]

use libfuzzer_sys::fuzz_target;
use settlement_domain::pan::{
    contains_pan, decimal_digit_value, luhn_valid, uuid_starts, UUID_INNER_DASHES,
};

/// Digits chosen by the input; a Luhn check digit completes the card number.
const BODY_DIGITS: usize = 15;
/// Bytes that choose the insertion: the digits, the position (two bytes), the grouping
/// (two bytes), the separators (two bytes, one bit per cut) and the characters put
/// beside the number when a text digit touches it.
const PARAMS_LEN: usize = BODY_DIGITS + 2 + 2 + 2 + 2;
/// Characters that keep the number apart from a neighbouring digit of the text. None
/// is a digit; each is a case the rules cover (a separator, a letter, punctuation,
/// white space, a character of several bytes).
const NEIGHBOURS: [&str; 8] = [" ", "-", "a", "Z", "/", "\n", "é", "*"];

fuzz_target!(|data: &[u8]| {
    let _ = contains_pan(&String::from_utf8_lossy(data));

    let Some(split) = data.len().checked_sub(PARAMS_LEN) else {
        return;
    };
    let (text, params) = data.split_at(split);
    let text = String::from_utf8_lossy(text);
    let (digit_bytes, params) = params.split_at(BODY_DIGITS);

    let mut digits: Vec<u8> = digit_bytes.iter().map(|b| b % 10).collect();
    let check = luhn_check_digit(&digits);
    digits.push(check);
    assert!(luhn_valid(&digits), "{digits:?} with check digit {check}");

    let word = |i: usize| u16::from_le_bytes([params[i], params[i + 1]]);
    let number = written(&digits, word(2), word(4));
    let at = char_boundary_at(&text, usize::from(word(0)));
    let (before, after) = text.split_at(at);
    // A digit of any script beside the number would lengthen its group.
    let digit_touches = |c: Option<char>| c.is_some_and(|c| decimal_digit_value(c).is_some());
    // A short first or last group beside a letter would be read as part of a word.
    let short_ends = word(2) % GROUPINGS == SPELLED_OUT;
    let touches = |c: Option<char>| {
        digit_touches(c) || (short_ends && c.is_some_and(|c| c.is_ascii_alphabetic()))
    };
    let neighbour = |choice: u8| match NEIGHBOURS[usize::from(choice) % NEIGHBOURS.len()] {
        letter if short_ends && letter.chars().all(|c| c.is_ascii_alphabetic()) => " ",
        other => other,
    };
    let left = if touches(before.chars().next_back()) {
        neighbour(params[6])
    } else {
        ""
    };
    let right = if touches(after.chars().next()) {
        neighbour(params[7])
    } else {
        ""
    };
    let with_card = format!("{before}{left}{number}{right}{after}");
    let start = before.len() + left.len();
    let inside = start + 1..start + number.len();
    let split_as_uuid = uuid_starts(&with_card)
        .iter()
        .any(|s| UUID_INNER_DASHES.iter().any(|d| inside.contains(&(s + d))));
    if split_as_uuid {
        return;
    }
    assert!(
        contains_pan(&with_card),
        "card number {number:?} not found in {with_card:?}"
    );
});

/// The digit that makes `body` pass the Luhn check, computed here rather than by
/// trying digits against the detector's own check.
fn luhn_check_digit(body: &[u8]) -> u8 {
    // With the check digit appended, the body's last digit is doubled, then every
    // other one going left.
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    u8::try_from(check).unwrap_or(0)
}

/// How many groupings `written` knows.
const GROUPINGS: u16 = 5;
/// The grouping of one digit per group.
const SPELLED_OUT: u16 = 4;

/// The number as text in the grouping `grouping` chooses: one group; groups of four
/// cut after the first one, two or three of them (the last group holding the rest);
/// or one digit per group. Each cut is written as a space or a dash as `separators`
/// says.
fn written(digits: &[u8], grouping: u16, separators: u16) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, d) in digits.iter().enumerate() {
        // A cut at `i` goes before digit `i`.
        let cut = match grouping % GROUPINGS {
            SPELLED_OUT => i > 0,
            fours => i > 0 && i % 4 == 0 && i / 4 <= usize::from(fours),
        };
        if cut {
            out.push(if separators & (1 << (i % 16)) != 0 { '-' } else { ' ' });
        }
        out.push(char::from(b'0' + d));
    }
    out
}

/// The char boundary of `text` nearest below `wanted % (len + 1)`.
fn char_boundary_at(text: &str, wanted: usize) -> usize {
    let mut at = wanted % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
