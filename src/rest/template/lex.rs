//! The lexer: template source to tokens, following Go's `text/template/parse` (delimiters, trim
//! markers, comments, strings, numbers, identifiers).

/// Go's notion of white space for trim markers and inside actions.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(super) fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok<'s> {
    Space,
    Close { trim: bool },
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
    Dot,
    Field(&'s str),
    Var(&'s str),
    Ident(&'s str),
    Str(String),
    Num(&'s str),
    Char(char),
    Bool(bool),
    Nil,
    Eof,
}

pub(super) struct Lexer<'s> {
    pub(super) src: &'s str,
    pub(super) pos: usize,
    /// The previous token ends a term (field, variable, `)`, identifier): a `.` followed by
    /// digits right after it is a numeric path segment, not a number.
    pub(super) after_term: bool,
}

impl<'s> Lexer<'s> {
    pub(super) fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    pub(super) fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    /// Consumes characters while `f` holds.
    pub(super) fn eat_while(&mut self, f: impl Fn(char) -> bool) {
        let rest = self.rest();
        let n = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += n;
    }

    pub(super) fn next(&mut self) -> Result<(Tok<'s>, usize), (String, usize)> {
        let start = self.pos;
        let tok = self.lex(start)?;
        self.after_term = matches!(tok, Tok::Field(_) | Tok::Var(_) | Tok::RParen | Tok::Ident(_));
        Ok((tok, start))
    }

    pub(super) fn lex(&mut self, start: usize) -> Result<Tok<'s>, (String, usize)> {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else { return Ok(Tok::Eof) };
        if rest.starts_with("}}") {
            self.pos += 2;
            return Ok(Tok::Close { trim: false });
        }
        if is_space(c) {
            if rest[1..].starts_with("-}}") {
                self.pos += 4;
                return Ok(Tok::Close { trim: true });
            }
            self.eat_while(is_space);
            // " -}}" after a run of spaces: the last space belongs to the trim marker.
            if self.rest().starts_with("-}}") {
                self.pos -= 1;
            }
            return Ok(Tok::Space);
        }
        self.pos += c.len_utf8();
        Ok(match c {
            '|' => Tok::Pipe,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '=' => Tok::Assign,
            ':' => {
                if self.peek_char() == Some('=') {
                    self.pos += 1;
                    Tok::Declare
                } else {
                    return Err(("expected :=".into(), start));
                }
            }
            '"' => Tok::Str(self.quoted(start)?),
            '`' => {
                let Some(end) = self.rest().find('`') else {
                    return Err(("unterminated raw string".into(), start));
                };
                let s = self.rest()[..end].replace('\r', "");
                self.pos += end + 1;
                Tok::Str(s)
            }
            '\'' => Tok::Char(self.char_lit(start)?),
            '$' => {
                self.eat_while(is_alnum);
                Tok::Var(&self.src[start..self.pos])
            }
            '.' => match self.peek_char() {
                Some(d) if d.is_ascii_digit() && self.after_term => {
                    self.eat_while(is_alnum);
                    Tok::Field(&self.src[start + 1..self.pos])
                }
                Some(d) if d.is_ascii_digit() => {
                    self.pos = start;
                    self.number(start)?
                }
                Some(a) if is_alnum(a) => {
                    self.eat_while(is_alnum);
                    Tok::Field(&self.src[start + 1..self.pos])
                }
                _ => Tok::Dot,
            },
            '+' | '-' | '0'..='9' => {
                self.pos = start;
                self.number(start)?
            }
            c if is_alnum(c) => {
                self.eat_while(is_alnum);
                let word = &self.src[start..self.pos];
                // Go: an identifier must be followed by a terminator.
                let ok = match self.peek_char() {
                    None => true,
                    Some(n) => is_space(n) || matches!(n, '.' | ',' | '|' | ':' | ')' | '(' | '}'),
                };
                if !ok {
                    return Err((format!("bad character after {word:?}"), self.pos));
                }
                match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word),
                }
            }
            other => return Err((format!("unexpected character {other:?} in action"), start)),
        })
    }

    /// Go's number lexing: sign, base prefix, digits with `_`, fraction, exponent, `i`.
    pub(super) fn number(&mut self, start: usize) -> Result<Tok<'s>, (String, usize)> {
        let accept = |lx: &mut Self, set: &str| -> bool {
            match lx.peek_char() {
                Some(c) if set.contains(c) => {
                    lx.pos += 1;
                    true
                }
                _ => false,
            }
        };
        accept(self, "+-");
        let mut digits = "0123456789_";
        if accept(self, "0") {
            if accept(self, "xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if accept(self, "oO") {
                digits = "01234567_";
            } else if accept(self, "bB") {
                digits = "01_";
            }
        }
        self.eat_while(|c| digits.contains(c));
        if accept(self, ".") {
            self.eat_while(|c| digits.contains(c));
        }
        if digits.len() == 11 && accept(self, "eE") {
            accept(self, "+-");
            self.eat_while(|c| c.is_ascii_digit() || c == '_');
        }
        if digits.len() == 23 && accept(self, "pP") {
            accept(self, "+-");
            self.eat_while(|c| c.is_ascii_digit() || c == '_');
        }
        accept(self, "i");
        if self.peek_char().is_some_and(is_alnum) {
            return Err((format!("bad number syntax: {:?}", &self.src[start..self.pos]), start));
        }
        Ok(Tok::Num(&self.src[start..self.pos]))
    }

    /// Scans and unquotes a `"..."` literal (the opening quote is consumed).
    pub(super) fn quoted(&mut self, start: usize) -> Result<String, (String, usize)> {
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(("unterminated quoted string".into(), start));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => break,
                '\n' => return Err(("unterminated quoted string".into(), start)),
                '\\' => {
                    self.escape(&mut bytes, '"', start)?;
                }
                c => {
                    let mut b = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| ("string literal is not valid UTF-8".into(), start))
    }

    /// A character constant (the opening quote is consumed); its value is the code point.
    pub(super) fn char_lit(&mut self, start: usize) -> Result<char, (String, usize)> {
        let bad = || ("malformed character constant".to_string(), start);
        let c = self.peek_char().ok_or_else(bad)?;
        self.pos += c.len_utf8();
        let value = match c {
            '\'' | '\n' => return Err(bad()),
            '\\' => {
                let mut bytes = Vec::new();
                let r = self.escape(&mut bytes, '\'', start)?;
                match r {
                    Some(r) => r,
                    None => char::from(*bytes.first().ok_or_else(bad)?),
                }
            }
            c => c,
        };
        if self.peek_char() != Some('\'') {
            return Err(bad());
        }
        self.pos += 1;
        Ok(value)
    }

    /// Decodes one escape after `\`, appending its bytes; returns the rune for `\u`/`\U` and
    /// simple escapes (so a character constant can use it), `None` for byte escapes.
    pub(super) fn escape(
        &mut self,
        out: &mut Vec<u8>,
        quote: char,
        start: usize,
    ) -> Result<Option<char>, (String, usize)> {
        let bad = |what: &str| (format!("invalid escape {what} in literal"), start);
        let c = self.peek_char().ok_or_else(|| bad("at end"))?;
        self.pos += c.len_utf8();
        let simple = match c {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            q if q == quote => Some(q),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s as u8);
            return Ok(Some(s));
        }
        let hex = |lx: &mut Self, n: usize| -> Result<u32, (String, usize)> {
            let digits = lx.rest().get(..n).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
            let digits = digits.ok_or_else(|| bad("(bad hex digits)"))?;
            lx.pos += n;
            u32::from_str_radix(digits, 16).map_err(|_| bad("(bad hex digits)"))
        };
        match c {
            'x' => {
                out.push(hex(self, 2)? as u8);
                Ok(None)
            }
            'u' | 'U' => {
                let v = hex(self, if c == 'u' { 4 } else { 8 })?;
                let r = char::from_u32(v).ok_or_else(|| bad("(not a code point)"))?;
                let mut b = [0; 4];
                out.extend_from_slice(r.encode_utf8(&mut b).as_bytes());
                Ok(Some(r))
            }
            '0'..='7' => {
                let digits = self
                    .src
                    .get(self.pos - 1..self.pos + 2)
                    .filter(|d| d.bytes().all(|b| (b'0'..=b'7').contains(&b)));
                let digits = digits.ok_or_else(|| bad("(bad octal digits)"))?;
                let v = u32::from_str_radix(digits, 8).map_err(|_| bad("(bad octal digits)"))?;
                if v > 255 {
                    return Err(bad("(octal value over 255)"));
                }
                self.pos += 2;
                out.push(v as u8);
                Ok(None)
            }
            other => Err(bad(&format!("\\{other}"))),
        }
    }
}
