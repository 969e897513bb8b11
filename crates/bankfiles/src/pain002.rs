//! The pain.002 reader: a customer payment status report, reduced to what a payout
//! needs (which original message and transfers it is about, and their statuses).
//!
//! Read are the versions whose official XSDs the tests validate the fixtures against:
//! pain.002.001.03, .12, .14 and .15. The paths read are the same in all four. The
//! reader is a streaming pass over quick-xml events: no DTD is accepted, no entity
//! other than XML's five and character references exists, and every size is bounded.

use quick_xml::events::{BytesRef, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Namespaces of the pain.002 versions read here.
pub const PAIN002_NAMESPACES: [&str; 4] = [
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.12",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.14",
    "urn:iso:std:iso:20022:tech:xsd:pain.002.001.15",
];

/// Largest report read, in bytes: a report that echoes every transfer of a full
/// payout file (`pain001::MAX_TRANSFERS_PER_FILE`) with its original transaction
/// reference takes about 1.5 KiB a transfer, so 16 MiB leaves room without letting
/// one file hold the process's memory.
pub const MAX_REPORT_BYTES: usize = 16 * 1024 * 1024;

/// Most transaction statuses (and, separately, payment information statuses) read
/// from one report: ten times a full payout file, for banks that repeat a status.
pub const MAX_REPORTED_PAYMENTS: usize = 100_000;

/// Deepest element nesting read; the deepest pain.002 path is under 20 levels, so
/// anything deeper is not a status report.
pub const MAX_ELEMENT_DEPTH: usize = 64;

/// A customer payment status report (pain.002) as sent by the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// `GrpHdr/MsgId`: the report's own id.
    pub message_id: String,
    /// `OrgnlGrpInfAndSts/OrgnlMsgId`: the pain.001 message the report is about.
    pub original_message_id: String,
    /// `OrgnlGrpInfAndSts/GrpSts`, as sent: the status of the whole original message.
    pub group_status: Option<String>,
    /// First `OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd`, e.g. DU01 for a duplicate message.
    pub group_reason_code: Option<String>,
    /// Every `OrgnlGrpInfAndSts/StsRsnInf/AddtlInf`, joined with spaces.
    pub group_reason_text: Option<String>,
    /// Statuses of whole payment information blocks (`OrgnlPmtInfAndSts`), in order.
    pub payment_information: Vec<PaymentInformationStatus>,
    /// Statuses of single transfers (`TxInfAndSts`), in document order.
    pub payments: Vec<PaymentStatus>,
}

/// The status of one payment information block of the original message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentInformationStatus {
    /// `OrgnlPmtInfId`: the `PmtInfId` the block was sent with.
    pub original_payment_information_id: String,
    /// `PmtInfSts`, as sent; absent when only the transactions carry statuses.
    pub status: Option<String>,
    /// First `StsRsnInf/Rsn/Cd` of the block.
    pub reason_code: Option<String>,
    /// Every `StsRsnInf/AddtlInf` of the block, joined with spaces.
    pub reason_text: Option<String>,
}

/// The status of one transfer of the original message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatus {
    /// `OrgnlEndToEndId`: the end-to-end id the transfer was sent with.
    pub original_end_to_end_id: String,
    /// `TxSts` as sent: ACCP, ACSC, ACSP, ACTC, ACWC, PDNG, RJCT...
    pub status: String,
    /// First `StsRsnInf/Rsn/Cd`, e.g. AC01, AC04, AC06, AM04.
    pub reason_code: Option<String>,
    /// Every `StsRsnInf/AddtlInf`, joined with spaces.
    pub reason_text: Option<String>,
}

/// Why a document is not read as a status report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Larger than `MAX_REPORT_BYTES`; nothing was parsed.
    #[error("status report is {bytes} bytes, more than the {limit} read")]
    TooLarge {
        /// Size given.
        bytes: usize,
        /// `MAX_REPORT_BYTES`.
        limit: usize,
    },
    /// More statuses than `MAX_REPORTED_PAYMENTS`.
    #[error("status report has more than {limit} {what}")]
    TooManyPayments {
        /// Which statuses overflowed.
        what: &'static str,
        /// `MAX_REPORTED_PAYMENTS`.
        limit: usize,
    },
    /// Nesting deeper than `MAX_ELEMENT_DEPTH`.
    #[error("elements are nested deeper than {limit} levels")]
    TooDeep {
        /// `MAX_ELEMENT_DEPTH`.
        limit: usize,
    },
    /// Not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What was wrong.
        message: String,
    },
    /// A `<!DOCTYPE>`: DTDs (and so entity declarations) are never accepted.
    #[error("a DOCTYPE is not accepted in a status report")]
    DoctypeNotAllowed,
    /// An entity reference other than XML's five predefined ones.
    #[error("undeclared entity &{name};")]
    UndeclaredEntity {
        /// The entity's name.
        name: String,
    },
    /// A root element or namespace other than a supported pain.002 `Document`.
    #[error(
        "not a supported pain.002 status report: root element {root:?} in namespace {namespace:?} \
         (read are pain.002.001.03, .12, .14 and .15)"
    )]
    UnsupportedDocument {
        /// Local name of the root element found.
        root: String,
        /// Its namespace, empty when it has none.
        namespace: String,
    },
    /// A required element is missing or empty.
    #[error("{what} is missing or empty")]
    Missing {
        /// The element, with its position when inside a repeated block.
        what: String,
    },
    /// An element that may appear once appears twice.
    #[error("{what} appears more than once")]
    Duplicate {
        /// The element, with its position when inside a repeated block.
        what: String,
    },
}

/// Reads a pain.002 customer payment status report of a supported version.
///
/// Refused are documents over `MAX_REPORT_BYTES`, malformed XML, any DOCTYPE, an
/// unsupported root or namespace, a missing `MsgId` or `OrgnlMsgId`, a
/// `TxInfAndSts` without `OrgnlEndToEndId` or `TxSts`, an `OrgnlPmtInfAndSts`
/// without `OrgnlPmtInfId`, and more than `MAX_REPORTED_PAYMENTS` statuses. Values
/// are trimmed of surrounding whitespace; elements of other namespaces (inside
/// `SplmtryData`) are skipped.
pub fn parse_pain002(xml: &str) -> Result<StatusReport, ParseError> {
    if xml.len() > MAX_REPORT_BYTES {
        return Err(ParseError::TooLarge {
            bytes: xml.len(),
            limit: MAX_REPORT_BYTES,
        });
    }
    // A byte order mark is how some banks' tools start UTF-8; it is not content.
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut state = State::default();
    loop {
        let position = reader.buffer_position();
        let malformed = |e: quick_xml::Error| ParseError::Malformed {
            position,
            message: e.to_string(),
        };
        let (namespace, event) = reader.read_resolved_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                let namespace = match namespace {
                    ResolveResult::Bound(ns) => Some(ns.as_ref().to_owned()),
                    ResolveResult::Unbound => None,
                    ResolveResult::Unknown(prefix) => {
                        return Err(ParseError::Malformed {
                            position,
                            message: format!("undeclared namespace prefix {prefix:?}"),
                        })
                    }
                };
                let local = start.local_name();
                state.start(namespace, local.as_ref(), position)?;
            }
            Event::End(_) => state.end()?,
            Event::Text(text) => state.text(&text.xml10_content(), position)?,
            Event::CData(data) => state.text(&data.xml10_content(), position)?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference, position)?;
                state.text(resolved.encode_utf8(&mut [0; 4]), position)?;
            }
            Event::DocType(_) => return Err(ParseError::DoctypeNotAllowed),
            Event::Empty(_) => {
                // expand_empty_elements turns every `<x/>` into Start and End.
                return Err(ParseError::Malformed {
                    position,
                    message: "unexpanded empty element".into(),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    state.finish(reader.buffer_position())
}

/// XML's five predefined entities and character references; nothing else exists
/// without a DTD.
fn resolve_reference(reference: &BytesRef<'_>, position: u64) -> Result<char, ParseError> {
    let malformed = |message: String| ParseError::Malformed { position, message };
    if reference.is_char_ref() {
        let c = reference
            .resolve_char_ref()
            .map_err(|e| malformed(e.to_string()))?
            .ok_or_else(|| malformed("bad character reference".into()))?;
        let legal =
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}');
        return if legal {
            Ok(c)
        } else {
            Err(malformed(format!(
                "character reference to U+{:04X}, which XML 1.0 does not allow",
                u32::from(c)
            )))
        };
    }
    match &**reference {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        name => Err(ParseError::UndeclaredEntity { name: name.into() }),
    }
}

/// A status reason being gathered: the first code and every additional text.
#[derive(Default)]
struct Reasons {
    code: Option<String>,
    texts: Vec<String>,
}

impl Reasons {
    fn text(&self) -> Option<String> {
        (!self.texts.is_empty()).then(|| self.texts.join(" "))
    }
}

#[derive(Default)]
struct PaymentInformationBuilder {
    id: Option<String>,
    status: Option<String>,
    reasons: Reasons,
}

#[derive(Default)]
struct PaymentBuilder {
    end_to_end_id: Option<String>,
    status: Option<String>,
    reasons: Reasons,
}

/// Where the reader is and what it has gathered.
#[derive(Default)]
struct State {
    /// Local names from `Document` down; `None` for an element of another namespace
    /// than the root's, which no path below matches.
    path: Vec<Option<String>>,
    /// The root's namespace, once the root is seen.
    namespace: Option<String>,
    text: String,
    message_id: Option<String>,
    original_message_id: Option<String>,
    group_status: Option<String>,
    group_reasons: Reasons,
    payment_information: Vec<PaymentInformationStatus>,
    payments: Vec<PaymentStatus>,
    open_payment_information: Option<PaymentInformationBuilder>,
    open_payment: Option<PaymentBuilder>,
}

impl State {
    /// The path below `Document/CstmrPmtStsRpt`, if the reader is inside it and every
    /// element on the way is in the root's namespace.
    fn report_path(&self) -> Option<Vec<String>> {
        match self.path.as_slice() {
            [Some(document), Some(report), below @ ..]
                if document == "Document" && report == "CstmrPmtStsRpt" =>
            {
                below.iter().cloned().collect()
            }
            _ => None,
        }
    }

    fn start(
        &mut self,
        namespace: Option<String>,
        local: &str,
        position: u64,
    ) -> Result<(), ParseError> {
        self.text.clear();
        let Some(root_namespace) = self.namespace.as_deref() else {
            let namespace = namespace.unwrap_or_default();
            if local != "Document" || !PAIN002_NAMESPACES.contains(&namespace.as_str()) {
                return Err(ParseError::UnsupportedDocument {
                    root: local.into(),
                    namespace,
                });
            }
            self.namespace = Some(namespace);
            self.path.push(Some(local.into()));
            return Ok(());
        };
        if self.path.is_empty() {
            return Err(ParseError::Malformed {
                position,
                message: "a second root element".into(),
            });
        }
        if self.path.len() >= MAX_ELEMENT_DEPTH {
            return Err(ParseError::TooDeep {
                limit: MAX_ELEMENT_DEPTH,
            });
        }
        let ours = namespace.as_deref() == Some(root_namespace);
        self.path.push(ours.then(|| local.to_owned()));
        let path = self.report_path().unwrap_or_default();
        match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["OrgnlPmtInfAndSts"] => {
                if self.payment_information.len() >= MAX_REPORTED_PAYMENTS {
                    return Err(ParseError::TooManyPayments {
                        what: "payment information statuses",
                        limit: MAX_REPORTED_PAYMENTS,
                    });
                }
                self.open_payment_information = Some(PaymentInformationBuilder::default());
            }
            ["OrgnlPmtInfAndSts", "TxInfAndSts"] => {
                if self.payments.len() >= MAX_REPORTED_PAYMENTS {
                    return Err(ParseError::TooManyPayments {
                        what: "payment statuses",
                        limit: MAX_REPORTED_PAYMENTS,
                    });
                }
                self.open_payment = Some(PaymentBuilder::default());
            }
            _ => {}
        }
        Ok(())
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), ParseError> {
        if self.path.is_empty() {
            if text.trim().is_empty() {
                return Ok(());
            }
            return Err(ParseError::Malformed {
                position,
                message: "text outside the root element".into(),
            });
        }
        self.text.push_str(text);
        Ok(())
    }

    fn end(&mut self) -> Result<(), ParseError> {
        let value = std::mem::take(&mut self.text).trim().to_owned();
        let path = self.report_path().unwrap_or_default();
        self.path.pop();
        let payment = self.payments.len() + 1;
        let block = self.payment_information.len() + 1;
        match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["GrpHdr", "MsgId"] => set_once(&mut self.message_id, value, "GrpHdr/MsgId"),
            ["OrgnlGrpInfAndSts", "OrgnlMsgId"] => set_once(
                &mut self.original_message_id,
                value,
                "OrgnlGrpInfAndSts/OrgnlMsgId",
            ),
            ["OrgnlGrpInfAndSts", "GrpSts"] => {
                set_once(&mut self.group_status, value, "OrgnlGrpInfAndSts/GrpSts")
            }
            ["OrgnlGrpInfAndSts", "StsRsnInf", rest @ ..] => {
                gather_reason(&mut self.group_reasons, rest, value);
                Ok(())
            }
            ["OrgnlPmtInfAndSts", "TxInfAndSts"] => {
                let open = self.open_payment.take().unwrap_or_default();
                let missing = |field: &str| ParseError::Missing {
                    what: format!("TxInfAndSts/{field} of payment {payment}"),
                };
                let original_end_to_end_id = open
                    .end_to_end_id
                    .ok_or_else(|| missing("OrgnlEndToEndId"))?;
                let status = open.status.ok_or_else(|| missing("TxSts"))?;
                self.payments.push(PaymentStatus {
                    original_end_to_end_id,
                    status,
                    reason_text: open.reasons.text(),
                    reason_code: open.reasons.code,
                });
                Ok(())
            }
            ["OrgnlPmtInfAndSts", "TxInfAndSts", field, rest @ ..] => {
                let Some(open) = self.open_payment.as_mut() else {
                    return Ok(());
                };
                let what = format!("TxInfAndSts/{field} of payment {payment}");
                match (*field, rest) {
                    ("OrgnlEndToEndId", []) => set_once(&mut open.end_to_end_id, value, &what),
                    ("TxSts", []) => set_once(&mut open.status, value, &what),
                    ("StsRsnInf", rest) => {
                        gather_reason(&mut open.reasons, rest, value);
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            ["OrgnlPmtInfAndSts"] => {
                let open = self.open_payment_information.take().unwrap_or_default();
                let original_payment_information_id =
                    open.id.ok_or_else(|| ParseError::Missing {
                        what: format!("OrgnlPmtInfAndSts/OrgnlPmtInfId of block {block}"),
                    })?;
                self.payment_information.push(PaymentInformationStatus {
                    original_payment_information_id,
                    status: open.status,
                    reason_text: open.reasons.text(),
                    reason_code: open.reasons.code,
                });
                Ok(())
            }
            ["OrgnlPmtInfAndSts", field, rest @ ..] => {
                let Some(open) = self.open_payment_information.as_mut() else {
                    return Ok(());
                };
                let what = format!("OrgnlPmtInfAndSts/{field} of block {block}");
                match (*field, rest) {
                    ("OrgnlPmtInfId", []) => set_once(&mut open.id, value, &what),
                    ("PmtInfSts", []) => set_once(&mut open.status, value, &what),
                    ("StsRsnInf", rest) => {
                        gather_reason(&mut open.reasons, rest, value);
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn finish(self, position: u64) -> Result<StatusReport, ParseError> {
        if self.namespace.is_none() {
            return Err(ParseError::Malformed {
                position,
                message: "no root element".into(),
            });
        }
        if !self.path.is_empty() {
            return Err(ParseError::Malformed {
                position,
                message: "the document ends inside an element".into(),
            });
        }
        let message_id = self.message_id.ok_or_else(|| ParseError::Missing {
            what: "GrpHdr/MsgId".into(),
        })?;
        let original_message_id = self
            .original_message_id
            .ok_or_else(|| ParseError::Missing {
                what: "OrgnlGrpInfAndSts/OrgnlMsgId".into(),
            })?;
        Ok(StatusReport {
            message_id,
            original_message_id,
            group_status: self.group_status,
            group_reason_text: self.group_reasons.text(),
            group_reason_code: self.group_reasons.code,
            payment_information: self.payment_information,
            payments: self.payments,
        })
    }
}

/// Stores a value that may appear once; an empty value counts as missing.
fn set_once(slot: &mut Option<String>, value: String, what: &str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Duplicate { what: what.into() });
    }
    if value.is_empty() {
        return Err(ParseError::Missing { what: what.into() });
    }
    *slot = Some(value);
    Ok(())
}

/// `rest` is the path below a `StsRsnInf`.
fn gather_reason(reasons: &mut Reasons, rest: &[&str], value: String) {
    match rest {
        ["Rsn", "Cd"] if reasons.code.is_none() && !value.is_empty() => reasons.code = Some(value),
        ["AddtlInf"] if !value.is_empty() => reasons.texts.push(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V03: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03";
    const V12: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.12";

    fn report(namespace: &str, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{namespace}">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2026-03-02T08:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>PAYOUT-1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
    </OrgnlGrpInfAndSts>
    {body}
  </CstmrPmtStsRpt>
</Document>"#
        )
    }

    fn tx(e2e: &str, status: &str, reasons: &str) -> String {
        format!(
            "<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>{status}</TxSts>{reasons}</TxInfAndSts>"
        )
    }

    fn block(txs: &str) -> String {
        format!(
            "<OrgnlPmtInfAndSts><OrgnlPmtInfId>PAYOUT-1-1</OrgnlPmtInfId>{txs}</OrgnlPmtInfAndSts>"
        )
    }

    #[test]
    fn transaction_statuses_and_reasons_are_read() {
        let body = block(
            &(tx("aa", "ACSC", "")
                + &tx(
                    "bb",
                    "RJCT",
                    "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Account closed</AddtlInf>\
                 <AddtlInf>since 2026-01-31</AddtlInf></StsRsnInf>\
                 <StsRsnInf><Rsn><Cd>AC06</Cd></Rsn><AddtlInf>and blocked</AddtlInf></StsRsnInf>",
                )),
        );
        let parsed = parse_pain002(&report(V12, &body)).expect("parses");
        assert_eq!(parsed.message_id, "STS-1");
        assert_eq!(parsed.original_message_id, "PAYOUT-1");
        assert_eq!(parsed.group_status, None);
        assert_eq!(
            parsed.payments,
            vec![
                PaymentStatus {
                    original_end_to_end_id: "aa".into(),
                    status: "ACSC".into(),
                    reason_code: None,
                    reason_text: None,
                },
                PaymentStatus {
                    original_end_to_end_id: "bb".into(),
                    status: "RJCT".into(),
                    reason_code: Some("AC04".into()),
                    reason_text: Some("Account closed since 2026-01-31 and blocked".into()),
                },
            ]
        );
        assert_eq!(
            parsed.payment_information,
            vec![PaymentInformationStatus {
                original_payment_information_id: "PAYOUT-1-1".into(),
                status: None,
                reason_code: None,
                reason_text: None,
            }]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_accepted() {
        let xml = format!("\u{FEFF}{}", report(V12, ""));
        assert_eq!(parse_pain002(&xml).expect("parses").message_id, "STS-1");
    }

    #[test]
    fn a_group_rejection_carries_its_reason() {
        let xml = report(V03, "").replace(
            "</OrgnlMsgNmId>",
            "</OrgnlMsgNmId><GrpSts>RJCT</GrpSts>\
             <StsRsnInf><Rsn><Cd>DU01</Cd></Rsn><AddtlInf>Duplicate message</AddtlInf></StsRsnInf>",
        );
        let parsed = parse_pain002(&xml).expect("parses");
        assert_eq!(parsed.group_status.as_deref(), Some("RJCT"));
        assert_eq!(parsed.group_reason_code.as_deref(), Some("DU01"));
        assert_eq!(
            parsed.group_reason_text.as_deref(),
            Some("Duplicate message")
        );
        assert!(parsed.payments.is_empty());
    }

    #[test]
    fn prefixed_elements_entities_and_cdata_are_read() {
        let xml = format!(
            r#"<p:Document xmlns:p="{V12}"><p:CstmrPmtStsRpt>
            <p:GrpHdr><p:MsgId>A&amp;B&#x43;</p:MsgId></p:GrpHdr>
            <p:OrgnlGrpInfAndSts><p:OrgnlMsgId><![CDATA[X<Y]]></p:OrgnlMsgId></p:OrgnlGrpInfAndSts>
            <p:SplmtryData><p:Envlp><q:TxSts xmlns:q="urn:other">IGNORED</q:TxSts></p:Envlp></p:SplmtryData>
            </p:CstmrPmtStsRpt></p:Document>"#
        );
        let parsed = parse_pain002(&xml).expect("parses");
        assert_eq!(parsed.message_id, "A&BC");
        assert_eq!(parsed.original_message_id, "X<Y");
    }

    #[test]
    fn elements_of_another_namespace_never_count() {
        let xml = report(
            V12,
            r#"<OrgnlPmtInfAndSts xmlns="urn:other"><OrgnlPmtInfId>x</OrgnlPmtInfId>
               <TxInfAndSts><OrgnlEndToEndId>zz</OrgnlEndToEndId></TxInfAndSts></OrgnlPmtInfAndSts>"#,
        );
        let parsed = parse_pain002(&xml).expect("parses");
        assert!(parsed.payments.is_empty());
        assert!(parsed.payment_information.is_empty());
    }

    #[test]
    fn other_namespaces_and_roots_are_refused_by_name() {
        let pain001 = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09\"/>";
        let refused = parse_pain002(pain001).expect_err("refused");
        assert_eq!(
            refused,
            ParseError::UnsupportedDocument {
                root: "Document".into(),
                namespace: "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09".into(),
            }
        );
        assert!(refused.to_string().contains("pain.001.001.09"));
        let v10 = report("urn:iso:std:iso:20022:tech:xsd:pain.002.001.10", "");
        assert!(matches!(
            parse_pain002(&v10),
            Err(ParseError::UnsupportedDocument { namespace, .. }) if namespace.ends_with("pain.002.001.10")
        ));
        assert_eq!(
            parse_pain002(&format!("<Report xmlns=\"{V03}\"/>")),
            Err(ParseError::UnsupportedDocument {
                root: "Report".into(),
                namespace: V03.into()
            })
        );
        assert_eq!(
            parse_pain002("<Document/>"),
            Err(ParseError::UnsupportedDocument {
                root: "Document".into(),
                namespace: String::new()
            })
        );
    }

    #[test]
    fn malformed_xml_is_refused() {
        for xml in [
            "",
            "not xml",
            &report(V12, "<Unclosed>"),
            &report(V12, "</Stray>"),
            &format!("<Document xmlns=\"{V12}\"><CstmrPmtStsRpt>"),
            &format!("{}<Document xmlns=\"{V12}\"/>", report(V12, "")),
            &report(V12, "").replace("STS-1", "STS&1"),
            &report(V12, "").replace("STS-1", "&#0;"),
            &report(V12, "").replace("STS-1", "&#x1;"),
            &report(V12, "<x:Y/>"),
        ] {
            assert!(
                matches!(parse_pain002(xml), Err(ParseError::Malformed { .. })),
                "{xml}: {:?}",
                parse_pain002(xml)
            );
        }
    }

    #[test]
    fn a_doctype_is_refused_before_any_entity_is_used() {
        let xml = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
            report(V12, "").replace("STS-1", "&x;").replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "")
        );
        assert_eq!(parse_pain002(&xml), Err(ParseError::DoctypeNotAllowed));
    }

    #[test]
    fn undeclared_entities_are_refused() {
        let xml = report(V12, "").replace("STS-1", "&lol;");
        assert_eq!(
            parse_pain002(&xml),
            Err(ParseError::UndeclaredEntity { name: "lol".into() })
        );
    }

    #[test]
    fn missing_message_ids_are_refused() {
        let xml = report(V12, "").replace("<MsgId>STS-1</MsgId>", "");
        assert_eq!(
            parse_pain002(&xml),
            Err(ParseError::Missing {
                what: "GrpHdr/MsgId".into()
            })
        );
        let xml = report(V12, "").replace("<OrgnlMsgId>PAYOUT-1</OrgnlMsgId>", "");
        assert_eq!(
            parse_pain002(&xml),
            Err(ParseError::Missing {
                what: "OrgnlGrpInfAndSts/OrgnlMsgId".into()
            })
        );
        let xml = report(V12, "").replace("STS-1", "  ");
        assert_eq!(
            parse_pain002(&xml),
            Err(ParseError::Missing {
                what: "GrpHdr/MsgId".into()
            })
        );
    }

    #[test]
    fn transactions_without_end_to_end_id_or_status_are_refused() {
        let body =
            block(&(tx("aa", "ACSC", "") + "<TxInfAndSts><TxSts>RJCT</TxSts></TxInfAndSts>"));
        assert_eq!(
            parse_pain002(&report(V12, &body)),
            Err(ParseError::Missing {
                what: "TxInfAndSts/OrgnlEndToEndId of payment 2".into()
            })
        );
        let body = block("<TxInfAndSts><OrgnlEndToEndId>aa</OrgnlEndToEndId></TxInfAndSts>");
        assert_eq!(
            parse_pain002(&report(V12, &body)),
            Err(ParseError::Missing {
                what: "TxInfAndSts/TxSts of payment 1".into()
            })
        );
        let body = "<OrgnlPmtInfAndSts><PmtInfSts>RJCT</PmtInfSts></OrgnlPmtInfAndSts>";
        assert!(matches!(
            parse_pain002(&report(V12, body)),
            Err(ParseError::Missing { what }) if what.starts_with("OrgnlPmtInfAndSts/OrgnlPmtInfId")
        ));
    }

    #[test]
    fn repeated_single_values_are_refused() {
        let body = block(
            "<TxInfAndSts><OrgnlEndToEndId>aa</OrgnlEndToEndId><TxSts>ACSC</TxSts><TxSts>RJCT</TxSts></TxInfAndSts>",
        );
        assert_eq!(
            parse_pain002(&report(V12, &body)),
            Err(ParseError::Duplicate {
                what: "TxInfAndSts/TxSts of payment 1".into()
            })
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let xml = " ".repeat(MAX_REPORT_BYTES + 1);
        assert_eq!(
            parse_pain002(&xml),
            Err(ParseError::TooLarge {
                bytes: MAX_REPORT_BYTES + 1,
                limit: MAX_REPORT_BYTES
            })
        );
    }

    #[test]
    fn more_payments_than_the_limit_are_refused() {
        let one = tx("0123456789abcdef0123456789abcdef", "ACSC", "");
        let body = block(&one.repeat(MAX_REPORTED_PAYMENTS + 1));
        assert!(body.len() < MAX_REPORT_BYTES);
        assert_eq!(
            parse_pain002(&report(V12, &body)),
            Err(ParseError::TooManyPayments {
                what: "payment statuses",
                limit: MAX_REPORTED_PAYMENTS
            })
        );
        let at_limit = block(&one.repeat(MAX_REPORTED_PAYMENTS));
        let parsed = parse_pain002(&report(V12, &at_limit)).expect("parses");
        assert_eq!(parsed.payments.len(), MAX_REPORTED_PAYMENTS);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let deep = "<a>".repeat(MAX_ELEMENT_DEPTH) + &"</a>".repeat(MAX_ELEMENT_DEPTH);
        assert_eq!(
            parse_pain002(&report(V12, &deep)),
            Err(ParseError::TooDeep {
                limit: MAX_ELEMENT_DEPTH
            })
        );
    }
}
