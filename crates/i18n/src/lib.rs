//! What merchants read, in their language.
//!
//! The messages live in Project Fluent files, one folder per locale
//! (`locales/en`, `locales/zh-CN`), compiled into the binary. [`tr`] formats one
//! message; [`Locale::from_accept_language`] picks the locale a request asks for.
//! Instants, dates, durations and amounts are put into sentences by the formatters
//! of [`format`]; machine-readable fields never go through this crate.

pub mod format;

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub use format::{fmt_date, fmt_duration, fmt_instant, fmt_money};

/// A language the service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Locale {
    /// English, the fallback.
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Locale {
    /// Every locale, English first.
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    /// The BCP 47 tag the service answers with (`Content-Language`, the stored
    /// profile setting).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// The locale's name in its own language, for a language switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::ZhCn => "简体中文",
        }
    }

    /// The locale a language tag names, matched on its primary language the way
    /// RFC 4647 lookup falls back (`en-GB` is English, any `zh` is served in
    /// Simplified Chinese); `None` for a language the service does not speak.
    pub fn parse(tag: &str) -> Option<Locale> {
        let tag = tag.trim();
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("en") {
            Some(Locale::En)
        } else if primary.eq_ignore_ascii_case("zh") {
            Some(Locale::ZhCn)
        } else {
            None
        }
    }

    /// The locale an `Accept-Language` header prefers (RFC 9110 §12.5.4): the
    /// supported language with the highest q-value, the earlier one on a tie;
    /// `None` when the header names none the service speaks (or only `*`), so the
    /// merchant's own default applies.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(u16, Locale)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            let mut quality = 1000u16;
            for param in parts {
                if let Some(q) = param
                    .trim()
                    .strip_prefix("q=")
                    .or_else(|| param.trim().strip_prefix("Q="))
                {
                    quality = parse_quality(q).unwrap_or(0);
                }
            }
            if quality == 0 {
                continue;
            }
            if let Some(locale) = Locale::parse(tag) {
                if best.is_none_or(|(q, _)| quality > q) {
                    best = Some((quality, locale));
                }
            }
        }
        best.map(|(_, locale)| locale)
    }
}

/// A q-value as thousandths (`1`, `0.8`, `0.125`); `None` when malformed.
fn parse_quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for Locale {
    type Err = UnknownLocale;

    /// Exactly one of the tags [`Locale::tag`] gives (a stored or configured setting).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::ALL
            .into_iter()
            .find(|l| l.tag() == s)
            .ok_or(UnknownLocale)
    }
}

/// A locale tag the service does not speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLocale;

impl fmt::Display for UnknownLocale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be one of: en, zh-CN")
    }
}

impl std::error::Error for UnknownLocale {}

/// A value put into a message: text (already formatted) or a count, which also
/// selects the plural form.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    Text(Cow<'a, str>),
    Number(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Arg<'_> {
    fn from(s: String) -> Self {
        Arg::Text(Cow::Owned(s))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(Cow::Borrowed(s.as_str()))
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Number(n)
    }
}

impl From<i32> for Arg<'_> {
    fn from(n: i32) -> Self {
        Arg::Number(i64::from(n))
    }
}

impl From<u32> for Arg<'_> {
    fn from(n: u32) -> Self {
        Arg::Number(i64::from(n))
    }
}

impl From<usize> for Arg<'_> {
    fn from(n: usize) -> Self {
        Arg::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The message files of each locale, by file name; the same names in every locale.
macro_rules! locale_files {
    ($dir:literal) => {
        [
            (
                "merchant.ftl",
                include_str!(concat!("../locales/", $dir, "/merchant.ftl")),
            ),
            (
                "problems.ftl",
                include_str!(concat!("../locales/", $dir, "/problems.ftl")),
            ),
            (
                "web.ftl",
                include_str!(concat!("../locales/", $dir, "/web.ftl")),
            ),
        ]
    };
}

/// The message files of `locale`: (file name, Fluent source).
pub fn sources(locale: Locale) -> [(&'static str, &'static str); 3] {
    match locale {
        Locale::En => locale_files!("en"),
        Locale::ZhCn => locale_files!("zh-CN"),
    }
}

type Bundle = FluentBundle<FluentResource>;

static BUNDLES: LazyLock<[Bundle; 2]> = LazyLock::new(|| Locale::ALL.map(bundle));

fn bundle(locale: Locale) -> Bundle {
    let id: unic_langid::LanguageIdentifier = locale
        .tag()
        .parse()
        .unwrap_or_else(|_| unreachable!("the locale tags are valid"));
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Plain text: no Unicode isolation marks around the values put in.
    bundle.set_use_isolating(false);
    for (name, source) in sources(locale) {
        let resource = FluentResource::try_new(source.to_owned())
            .unwrap_or_else(|(_, errors)| panic!("{locale}/{name} does not parse: {errors:?}"));
        if let Err(errors) = bundle.add_resource(resource) {
            panic!("{locale}/{name} does not load: {errors:?}");
        }
    }
    bundle
}

/// Message `id` of `locale` with `args` put in. A message missing from the locale
/// falls back to English, then to its id (the tests of this crate keep both from
/// happening).
pub fn tr(locale: Locale, id: &str, args: &[(&str, Arg<'_>)]) -> String {
    let mut fluent_args = FluentArgs::with_capacity(args.len());
    for (name, value) in args {
        let value = match value {
            Arg::Text(text) => FluentValue::from(text.as_ref()),
            Arg::Number(n) => FluentValue::from(*n),
        };
        fluent_args.set(*name, value);
    }
    for bundle in [&BUNDLES[locale as usize], &BUNDLES[Locale::En as usize]] {
        if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            debug_assert!(errors.is_empty(), "message {id} of {locale}: {errors:?}");
            return text.into_owned();
        }
        debug_assert!(false, "message {id} is missing in {locale}");
    }
    id.to_owned()
}

/// True when `id` is a message of `locale`.
pub fn has_message(locale: Locale, id: &str) -> bool {
    BUNDLES[locale as usize].has_message(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    use fluent_syntax::ast;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let pick = Locale::from_accept_language;
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Some(Locale::ZhCn));
        assert_eq!(pick("en-US,en;q=0.9"), Some(Locale::En));
        assert_eq!(pick("fr-FR, en;q=0.5, zh;q=0.7"), Some(Locale::ZhCn));
        assert_eq!(pick("zh-TW"), Some(Locale::ZhCn));
        assert_eq!(pick("de, fr;q=0.9"), None);
        assert_eq!(pick("*"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("zh;q=0, en;q=0.1"), Some(Locale::En));
        // A tie keeps the earlier one; a malformed q-value counts as refused.
        assert_eq!(pick("en;q=0.5, zh;q=0.5"), Some(Locale::En));
        assert_eq!(pick("zh;q=2, en;q=0.1"), Some(Locale::En));
        assert_eq!(pick("EN-gb;Q=1.0"), Some(Locale::En));
    }

    #[test]
    fn stored_tags_round_trip() {
        for locale in Locale::ALL {
            assert_eq!(locale.tag().parse::<Locale>(), Ok(locale));
        }
        assert!("zh".parse::<Locale>().is_err());
    }

    /// Message id -> the variables it uses, of one locale's files.
    fn variables(locale: Locale) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for (name, source) in sources(locale) {
            let resource = fluent_syntax::parser::parse(source)
                .unwrap_or_else(|(_, e)| panic!("{locale}/{name}: {e:?}"));
            for entry in resource.body {
                if let ast::Entry::Message(m) = entry {
                    let mut vars = BTreeSet::new();
                    if let Some(p) = &m.value {
                        pattern_variables(p, &mut vars);
                    }
                    for a in &m.attributes {
                        pattern_variables(&a.value, &mut vars);
                    }
                    let id = m.id.name.to_owned();
                    assert!(
                        out.insert(id.clone(), vars).is_none(),
                        "{locale}/{name}: message {id} is defined twice"
                    );
                }
            }
        }
        out
    }

    fn pattern_variables(p: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
        for element in &p.elements {
            if let ast::PatternElement::Placeable { expression } = element {
                expression_variables(expression, vars);
            }
        }
    }

    fn expression_variables(e: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
        match e {
            ast::Expression::Select { selector, variants } => {
                inline_variables(selector, vars);
                for v in variants {
                    pattern_variables(&v.value, vars);
                }
            }
            ast::Expression::Inline(i) => inline_variables(i, vars),
        }
    }

    fn inline_variables(i: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
        match i {
            ast::InlineExpression::VariableReference { id } => {
                vars.insert(id.name.to_owned());
            }
            ast::InlineExpression::FunctionReference { arguments, .. } => {
                for a in &arguments.positional {
                    inline_variables(a, vars);
                }
                for a in &arguments.named {
                    inline_variables(&a.value, vars);
                }
            }
            ast::InlineExpression::Placeable { expression } => {
                expression_variables(expression, vars);
            }
            _ => {}
        }
    }

    #[test]
    fn every_message_exists_in_every_locale_with_the_same_variables() {
        let english = variables(Locale::En);
        assert!(!english.is_empty());
        for locale in Locale::ALL {
            let other = variables(locale);
            for (id, vars) in &english {
                let Some(theirs) = other.get(id) else {
                    panic!("message {id} is missing in {locale}");
                };
                assert_eq!(
                    theirs, vars,
                    "message {id}: variables of {locale} differ from en"
                );
            }
            for id in other.keys() {
                assert!(
                    english.contains_key(id),
                    "message {id} of {locale} is not in en"
                );
            }
        }
    }

    #[test]
    fn every_locale_loads_and_formats_without_isolation_marks() {
        for locale in Locale::ALL {
            let text = tr(locale, "duration-minutes", &[("minutes", 5.into())]);
            assert!(!text.contains('\u{2068}'), "{text}");
            assert!(text.contains('5'), "{text}");
        }
        assert_eq!(
            tr(Locale::En, "duration-minutes", &[("minutes", 1.into())]),
            "1 minute"
        );
        assert_eq!(
            tr(Locale::En, "duration-minutes", &[("minutes", 2.into())]),
            "2 minutes"
        );
        assert_eq!(
            tr(Locale::ZhCn, "duration-minutes", &[("minutes", 2.into())]),
            "2分钟"
        );
    }
}
