//! The PAN guard on arbitrary text: it never panics, and a Luhn-valid 16-digit card
//! number put anywhere into the text is found.
//!
//! Input: the whole input, read as UTF-8 with invalid bytes replaced, is checked as
//! is. When it is at least `PARAMS_LEN` bytes long, its last `PARAMS_LEN` bytes also
//! choose a card number and how to write it, and it is inserted into the text before
//! them. The insertion keeps to the rules documented on `contains_pan`: the number is
//! a span of whole digit groups (a digit of the text right beside it would lengthen
//! a group and make another number, so a non-digit is put between them), its inner
//! groups are joined by single spaces or dashes, and its first and last groups hold
//! at least four digits (a shorter group glued to a letter is read as part of a word).
//! When the insertion happens to make a canonical UUID whose inner dash falls inside
//! the number, the number is that identifier's groups and is not looked for.

#![no_main]

use libfuzzer_sys::fuzz_target;
use settlement_domain::pan::{
    contains_pan, decimal_digit_value, luhn_valid, uuid_starts, UUID_INNER_DASHES,
};

/// Digits chosen by the input; a Luhn check digit completes the card number.
const BODY_DIGITS: usize = 15;
/// Bytes that choose the insertion: the digits, the position (two bytes), the group
/// cuts (two bytes, one bit per place between digits), the separators (two bytes, one
/// bit per cut) and the characters put beside the number when a text digit touches it.
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
    let left = if digit_touches(before.chars().next_back()) {
        NEIGHBOURS[usize::from(params[6]) % NEIGHBOURS.len()]
    } else {
        ""
    };
    let right = if digit_touches(after.chars().next()) {
        NEIGHBOURS[usize::from(params[7]) % NEIGHBOURS.len()]
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

/// The number as text: cut between digits where `cuts` has a bit set (only where
/// both the first and the last group keep at least four digits), each cut written
/// as a space or a dash as `separators` says.
fn written(digits: &[u8], cuts: u16, separators: u16) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, d) in digits.iter().enumerate() {
        // A cut at `i` goes before digit `i`: allowed for 4 <= i <= len - 4.
        if i >= 4 && i + 4 <= digits.len() && cuts & (1 << i) != 0 {
            out.push(if separators & (1 << i) != 0 { '-' } else { ' ' });
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
