//! Tokens of a filter expression, each with its position.

use super::FilterError;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A word: keyword, number, address, CIDR, range, constant name.
    Word(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// `!` (same as `not`).
    Bang,
    /// `&&` (same as `and`).
    AndAnd,
    /// `||` (same as `or`).
    OrOr,
    /// `&` (bitwise, in flag tests).
    Amp,
    /// `|` (bitwise, in flag tests).
    Pipe,
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`, `>`, `<=`, `>=` (recognized to reject them clearly).
    Rel(&'static str),
}

impl Tok {
    /// The token as the user wrote it (for messages).
    pub fn text(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::LBracket => "[".into(),
            Tok::RBracket => "]".into(),
            Tok::Bang => "!".into(),
            Tok::AndAnd => "&&".into(),
            Tok::OrOr => "||".into(),
            Tok::Amp => "&".into(),
            Tok::Pipe => "|".into(),
            Tok::Eq => "=".into(),
            Tok::Ne => "!=".into(),
            Tok::Rel(r) => (*r).into(),
        }
    }
}

/// A token and where it starts: a 1-based character position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    pub tok: Tok,
    pub pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '-' | '_')
}

/// Split `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Spanned>, FilterError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        let pos = i + 1;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match (c, next) {
            (c, _) if c.is_whitespace() => {
                i += 1;
                continue;
            }
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('!', _) => (Tok::Bang, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('&', _) => (Tok::Amp, 1),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('|', _) => (Tok::Pipe, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('=', _) => (Tok::Eq, 1),
            ('<', Some('=')) => (Tok::Rel("<="), 2),
            ('<', _) => (Tok::Rel("<"), 1),
            ('>', Some('=')) => (Tok::Rel(">="), 2),
            ('>', _) => (Tok::Rel(">"), 1),
            (c, _) if is_word_char(c) => {
                let mut j = i;
                while chars.get(j).is_some_and(|&c| is_word_char(c)) {
                    j += 1;
                }
                let word: String = chars.get(i..j).unwrap_or_default().iter().collect();
                (Tok::Word(word), j - i)
            }
            (c, _) => {
                return Err(FilterError::new(
                    pos,
                    c.to_string(),
                    "unsupported character",
                ));
            }
        };
        out.push(Spanned { tok, pos });
        i += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_operators_and_words() {
        let t = lex("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0 && !src 10.0.0.0/8").unwrap();
        let texts: Vec<String> = t.iter().map(|s| s.tok.text()).collect();
        assert_eq!(
            texts,
            [
                "tcp",
                "[",
                "tcpflags",
                "]",
                "&",
                "(",
                "tcp-syn",
                "|",
                "tcp-ack",
                ")",
                "!=",
                "0",
                "&&",
                "!",
                "src",
                "10.0.0.0/8"
            ]
        );
        assert_eq!(t[1].pos, 4);
        assert_eq!(t.last().unwrap().pos, 48);
    }

    #[test]
    fn rejects_strange_characters_with_their_position() {
        let e = lex("port 80 ; rm").unwrap_err();
        assert_eq!(e.pos, 9);
        assert_eq!(e.token, ";");
    }
}
