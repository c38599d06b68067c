//! Who a request is: the read token (`--auth-token-file`) and the operator tokens
//! (`--operator-tokens-file`, lines of `name token`). A read token reads; an operator token reads
//! and acts (the POST routes), and its name is the actor recorded with every command.
//!
//! Tokens are compared in constant time: every configured token is compared with the presented
//! one, each over the whole presented length, with no early exit, so the time taken says nothing
//! about which token (or how much of one) matched. Tokens are never logged and never appear in an
//! error message (errors name the line and the token's owner).

use std::path::Path;

use sdash_proto::command::MAX_ACTOR_CHARS;

/// One operator: a name (the recorded actor) and its token.
#[derive(Clone)]
pub struct Operator {
    pub name: String,
    token: Vec<u8>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The operator tokens of `--operator-tokens-file`.
#[derive(Debug, Clone, Default)]
pub struct OperatorTokens {
    operators: Vec<Operator>,
}

/// Shortest operator token accepted (characters): a guessable token would let anyone act.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A bad `--operator-tokens-file`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokensFileError {
    #[error("cannot read --operator-tokens-file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(
        "--operator-tokens-file line {line}: expected `name token` (two fields separated by blanks), found {fields} field(s)"
    )]
    Fields { line: usize, fields: usize },
    #[error(
        "--operator-tokens-file line {line}: the name {name:?} must have 1 to {MAX_ACTOR_CHARS} characters of letters, digits, '.', '_', '-' and '@'"
    )]
    Name { line: usize, name: String },
    #[error(
        "--operator-tokens-file line {line}: the token of {name:?} is shorter than {MIN_TOKEN_CHARS} characters"
    )]
    Short { line: usize, name: String },
    #[error("--operator-tokens-file line {line}: the name {name:?} is already on line {first}")]
    DuplicateName {
        line: usize,
        name: String,
        first: usize,
    },
    #[error(
        "--operator-tokens-file line {line}: the token of {name:?} is the same as the token of {other:?} on line {first}"
    )]
    DuplicateToken {
        line: usize,
        name: String,
        other: String,
        first: usize,
    },
    #[error(
        "--operator-tokens-file line {line}: the token of {name:?} is the read token (--auth-token-file); a read token must never act"
    )]
    ReadToken { line: usize, name: String },
    #[error("--operator-tokens-file {path} holds no `name token` line")]
    Empty { path: String },
}

fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=MAX_ACTOR_CHARS).contains(&n)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl OperatorTokens {
    /// Reads and checks the file (see [`OperatorTokens::parse`]).
    pub fn read(path: &Path, read_token: Option<&str>) -> Result<OperatorTokens, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokensFileError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let tokens = OperatorTokens::parse(&text, read_token)?;
        if tokens.operators.is_empty() {
            return Err(TokensFileError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(tokens)
    }

    /// Parses `name token` lines; blank lines and lines starting with `#` are ignored. Names
    /// and tokens must be unique, and no token may equal the read token.
    pub fn parse(text: &str, read_token: Option<&str>) -> Result<OperatorTokens, TokensFileError> {
        let mut operators: Vec<(usize, Operator)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let [name, token] = fields[..] else {
                return Err(TokensFileError::Fields {
                    line,
                    fields: fields.len(),
                });
            };
            if !valid_name(name) {
                return Err(TokensFileError::Name {
                    line,
                    name: name.to_owned(),
                });
            }
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(TokensFileError::Short {
                    line,
                    name: name.to_owned(),
                });
            }
            if let Some((first, _)) = operators.iter().find(|(_, o)| o.name == name) {
                return Err(TokensFileError::DuplicateName {
                    line,
                    name: name.to_owned(),
                    first: *first,
                });
            }
            if let Some((first, other)) = operators
                .iter()
                .find(|(_, o)| o.token.as_slice() == token.as_bytes())
            {
                return Err(TokensFileError::DuplicateToken {
                    line,
                    name: name.to_owned(),
                    other: other.name.clone(),
                    first: *first,
                });
            }
            if read_token == Some(token) {
                return Err(TokensFileError::ReadToken {
                    line,
                    name: name.to_owned(),
                });
            }
            operators.push((
                line,
                Operator {
                    name: name.to_owned(),
                    token: token.as_bytes().to_vec(),
                },
            ));
        }
        Ok(OperatorTokens {
            operators: operators.into_iter().map(|(_, o)| o).collect(),
        })
    }

    /// The operators' names, in file order (never their tokens).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.operators.iter().map(|o| o.name.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.operators.is_empty()
    }
}

/// Who presented a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No token, or one the server does not know.
    Nobody,
    /// The read token: may read, never act.
    Reader,
    /// An operator token: may read and act; the name is the actor.
    Operator(String),
}

/// Compares `presented` with `configured` in time that depends only on the length of
/// `presented`: every byte is compared, a shorter or longer configured token included.
fn ct_eq(presented: &[u8], configured: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != configured.len());
    for (i, p) in presented.iter().enumerate() {
        let c = configured.get(i).copied().unwrap_or(0);
        diff |= p ^ c;
    }
    std::hint::black_box(diff) == 0
}

/// Who `presented` is, comparing it with every configured token (no early exit).
pub fn identify(
    presented: Option<&str>,
    read_token: Option<&str>,
    operators: Option<&OperatorTokens>,
) -> Identity {
    let Some(presented) = presented else {
        return Identity::Nobody;
    };
    let presented = presented.as_bytes();
    let reader = read_token.is_some_and(|t| ct_eq(presented, t.as_bytes()));
    let mut operator: Option<&str> = None;
    for o in operators
        .map(|o| o.operators.as_slice())
        .unwrap_or_default()
    {
        // Every token is compared, whichever matched.
        if ct_eq(presented, &o.token) {
            operator = Some(o.name.as_str());
        }
    }
    match (operator, reader) {
        (Some(name), _) => Identity::Operator(name.to_owned()),
        (None, true) => Identity::Reader,
        (None, false) => Identity::Nobody,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaa-1";
    const B: &str = "bbbbbbbbbbbbbbbb-2";

    #[test]
    fn a_good_file_parses_and_identifies() {
        let text = format!("# operators\n\n  alice {A}  \nbob\t{B}\n# end\n");
        let tokens = OperatorTokens::parse(&text, Some("read-token")).unwrap_or_default();
        assert_eq!(tokens.names().collect::<Vec<_>>(), ["alice", "bob"]);
        let id = |t: Option<&str>| identify(t, Some("read-token"), Some(&tokens));
        assert_eq!(id(Some(A)), Identity::Operator("alice".into()));
        assert_eq!(id(Some(B)), Identity::Operator("bob".into()));
        assert_eq!(id(Some("read-token")), Identity::Reader);
        assert_eq!(id(Some("aaaaaaaaaaaaaaaa")), Identity::Nobody);
        assert_eq!(id(Some(&format!("{A}x"))), Identity::Nobody);
        assert_eq!(id(Some("")), Identity::Nobody);
        assert_eq!(id(None), Identity::Nobody);
        assert_eq!(identify(Some(A), None, None), Identity::Nobody);
        assert!(!format!("{tokens:?}").contains(A), "Debug shows a token");
    }

    #[test]
    fn bad_files_name_the_line_and_never_the_token() {
        let err = |text: &str| {
            OperatorTokens::parse(text, Some("read-token-read-token"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = err(&format!("alice {A}\nbob\n"));
        assert!(e.contains("line 2") && e.contains("1 field"), "{e}");
        let e = err(&format!("alice {A} extra\n"));
        assert!(e.contains("line 1") && e.contains("3 field"), "{e}");
        let e = err(&format!("\n\nalice {A}\nalice {B}\n"));
        assert!(
            e.contains("line 4") && e.contains("\"alice\"") && e.contains("line 3"),
            "{e}"
        );
        let e = err(&format!("alice {A}\nbob {A}\n"));
        assert!(
            e.contains("line 2") && e.contains("\"bob\"") && e.contains("\"alice\""),
            "{e}"
        );
        assert!(!e.contains(A), "{e}");
        let e = err("alice short\n");
        assert!(e.contains("line 1") && e.contains("shorter"), "{e}");
        assert!(!e.contains("short\n"));
        let e = err("al ice\n");
        assert!(e.contains("line 1"), "{e}");
        let e = err("al/ice aaaaaaaaaaaaaaaaaaaaaaa\n");
        assert!(e.contains("line 1") && e.contains("name"), "{e}");
        let e = err("reader read-token-read-token\n");
        assert!(e.contains("line 1") && e.contains("read token"), "{e}");
        assert!(!e.contains("read-token-read-token"), "{e}");
    }

    #[test]
    fn comparison_covers_every_byte() {
        assert!(ct_eq(b"secret-token", b"secret-token"));
        assert!(!ct_eq(b"secret-token", b"secret-tokeN"));
        assert!(!ct_eq(b"secret-token", b"secret-token-longer"));
        assert!(!ct_eq(b"secret-token-longer", b"secret-token"));
        assert!(!ct_eq(b"", b"x"));
    }
}
