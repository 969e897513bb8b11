//! Bearer token claims and the four roles: ops, merchant, terminal, host. Signing is
//! here (for `settlementd token`, the simulator, the benchmark and the tests);
//! verification belongs to the server.

use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Why a principal may not do what it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The caller is known but its role or identity does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The caller is told the thing does not exist, so ids cannot be probed.
    #[error("{0} not found")]
    NotFound(&'static str),
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The acquirer's operations staff; `subject` (the token's `sub`) names who acts.
    Ops { subject: String },
    /// A merchant, reading its own data.
    Merchant { merchant_id: String },
    /// One terminal of a merchant, acting only as itself.
    Terminal {
        terminal_id: String,
        merchant_id: String,
    },
    /// The acquirer's authorization host (its switch); `subject` (the token's `sub`)
    /// names the switch. It sends authorizations and reversals, nothing else.
    Host { subject: String },
}

/// The role claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Ops,
    Merchant,
    Terminal,
    Host,
}

/// The `aud` claim: one audience, or an array of them (RFC 7519 4.1.3). A token is
/// for this service when its audience is, or its array holds, the configured one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "settlement-api"`.
    One(String),
    /// `"aud": ["settlement-api", "reports"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Every audience named.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        match self {
            Audience::One(name) => std::slice::from_ref(name).iter(),
            Audience::Many(names) => names.iter(),
        }
    }
}

/// The claims the service reads. `exp`, `iss` and `aud` are required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<String>,
}

impl Claims {
    /// Claims for a principal, valid from now for `ttl_seconds`.
    pub fn for_principal(
        principal: &Principal,
        issuer: &str,
        audience: &str,
        ttl_seconds: u64,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (role, merchant_id, terminal_id, sub) = match principal {
            Principal::Ops { subject } => (Role::Ops, None, None, subject.clone()),
            Principal::Host { subject } => (Role::Host, None, None, subject.clone()),
            Principal::Merchant { merchant_id } => (
                Role::Merchant,
                Some(merchant_id.clone()),
                None,
                format!("merchant:{merchant_id}"),
            ),
            Principal::Terminal {
                terminal_id,
                merchant_id,
            } => (
                Role::Terminal,
                Some(merchant_id.clone()),
                Some(terminal_id.clone()),
                format!("terminal:{terminal_id}"),
            ),
        };
        Claims {
            iss: issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            sub,
            exp: now + ttl_seconds,
            nbf: Some(now),
            iat: Some(now),
            role,
            merchant_id,
            terminal_id,
        }
    }
}

impl Claims {
    /// True when a text claim holds a control character (`char::is_control`: C0, DEL
    /// and C1, U+0000 among them). Such a token is refused whole: its names would
    /// reach the logs, the audit trail and Postgres, whose text cannot hold U+0000.
    pub fn holds_control_character(&self) -> bool {
        [
            Some(&self.iss),
            Some(&self.sub),
            self.merchant_id.as_ref(),
            self.terminal_id.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.aud.names())
        .any(|text| text.chars().any(char::is_control))
    }
}

/// Signs claims with an HS256 secret (local use: `settlementd token`, tests, demo).
#[cfg(feature = "sign")]
pub fn sign_hs256(claims: &Claims, secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret)?,
    )
}

impl Principal {
    /// Only operations may pass; returns who acts, for the audit trail.
    pub fn require_ops(&self) -> Result<&str, Refusal> {
        match self {
            Principal::Ops { subject } => Ok(subject),
            _ => Err(Refusal::Forbidden("this route is for operations only")),
        }
    }

    /// The merchant itself or operations may read the merchant's data. Another
    /// merchant is told the merchant does not exist, so ids cannot be probed.
    pub fn require_merchant(&self, merchant_id: &str) -> Result<(), Refusal> {
        match self {
            Principal::Ops { .. } => Ok(()),
            Principal::Merchant { merchant_id: own } if own == merchant_id => Ok(()),
            Principal::Merchant { .. } => Err(Refusal::NotFound("merchant")),
            Principal::Terminal { .. } => {
                Err(Refusal::Forbidden("terminals cannot read merchant data"))
            }
            Principal::Host { .. } => Err(Refusal::Forbidden(
                "the authorization host cannot read merchant data",
            )),
        }
    }

    /// Only the authorization host may pass; returns the switch that acts.
    pub fn require_host(&self) -> Result<&str, Refusal> {
        match self {
            Principal::Host { subject } => Ok(subject),
            _ => Err(Refusal::Forbidden(
                "this route is for the authorization host only",
            )),
        }
    }

    /// A terminal's own data: the terminal itself, its merchant, or operations.
    /// Another merchant is told the merchant does not exist.
    pub fn require_terminal_reader(
        &self,
        merchant_id: &str,
        terminal_id: &str,
    ) -> Result<(), Refusal> {
        match self {
            Principal::Terminal {
                terminal_id: own,
                merchant_id: own_merchant,
            } if own == terminal_id && own_merchant == merchant_id => Ok(()),
            Principal::Terminal { .. } => Err(Refusal::Forbidden("a terminal acts only as itself")),
            _ => self.require_merchant(merchant_id),
        }
    }

    /// Only the terminal itself may pass; returns its merchant.
    pub fn require_terminal(&self, terminal_id: &str) -> Result<String, Refusal> {
        match self {
            Principal::Terminal {
                terminal_id: own,
                merchant_id,
            } if own == terminal_id => Ok(merchant_id.clone()),
            Principal::Terminal { .. } => Err(Refusal::Forbidden("a terminal acts only as itself")),
            _ => Err(Refusal::Forbidden("this route is for terminals only")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal() -> Claims {
        Claims::for_principal(
            &Principal::Terminal {
                terminal_id: "t1".into(),
                merchant_id: "m1".into(),
            },
            "settlement",
            "settlement-api",
            60,
        )
    }

    #[test]
    fn a_control_character_in_any_text_claim_is_found() {
        assert!(!terminal().holds_control_character());
        let mut printable = terminal();
        printable.sub = "ops:zoë ⌘ ٤".into();
        assert!(!printable.holds_control_character());
        let setters: [fn(&mut Claims, String); 6] = [
            |c, v| c.iss = v,
            |c, v| c.aud = Audience::One(v),
            |c, v| c.aud = Audience::Many(vec!["settlement-api".into(), v]),
            |c, v| c.sub = v,
            |c, v| c.merchant_id = Some(v),
            |c, v| c.terminal_id = Some(v),
        ];
        for set in setters {
            for bad in ["a\0b", "\n", "t1\r", "\u{7f}", "\u{85}", "\u{9b}x", "\t"] {
                let mut claims = terminal();
                set(&mut claims, bad.into());
                assert!(claims.holds_control_character(), "{bad:?}");
            }
        }
    }

    #[test]
    fn an_audience_is_one_name_or_an_array_of_names() {
        let one: Audience = serde_json::from_str(r#""settlement-api""#).unwrap();
        assert_eq!(one, Audience::One("settlement-api".into()));
        let many: Audience = serde_json::from_str(r#"["reports", "settlement-api"]"#).unwrap();
        assert_eq!(
            many.names().collect::<Vec<_>>(),
            ["reports", "settlement-api"]
        );
        for wrong in ["5", "null", r#"{"aud": "x"}"#, r#"["a", 5]"#] {
            assert!(serde_json::from_str::<Audience>(wrong).is_err(), "{wrong}");
        }
        // Signed tokens keep the single form.
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""settlement-api""#);
    }
}
