//! A parser for the protobuf text format, producing an untyped message tree.
//!
//! Enough of the format for TensorFlow Metadata schemas: `name: value` scalars (identifiers,
//! numbers, single- or double-quoted strings with C escapes, adjacent strings concatenated),
//! nested messages with `{}` or `<>` (colon optional), list shorthand `name: [a, b]`, expanded
//! `Any` fields named `[type.googleapis.com/...]`, and `#` comments. Every node keeps its line so
//! that errors can point into the file.

use crate::error::{Error, Result};

/// A scalar as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    /// A (concatenated) string literal, unescaped to raw bytes.
    Bytes(Vec<u8>),
    /// An identifier or number token, verbatim (`INT`, `true`, `12`, `-1.5e3`, `inf`).
    Token(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Scalar(Scalar),
    Message(Message),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    pub name: String,
    pub line: usize,
    pub value: FieldValue,
}

/// A message: its fields in file order (repeated fields appear several times).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Message {
    pub fields: Vec<Field>,
}

impl Message {
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a Field> {
        self.all(name).last()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(Vec<u8>),
    Punct(char),
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    origin: &'a str,
}

impl<'a> Lexer<'a> {
    fn err(&self, line: usize, msg: impl Into<String>) -> Error {
        Error::schema(format!("{}:{}", self.origin, line), msg)
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.src.get(self.pos) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'#' => {
                    while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// Next token and its line; `None` at end of input.
    fn next(&mut self) -> Result<Option<(Tok, usize)>> {
        self.skip_ws();
        let line = self.line;
        let Some(&c) = self.src.get(self.pos) else {
            return Ok(None);
        };
        let tok = match c {
            b'{' | b'}' | b'<' | b'>' | b':' | b',' | b';' | b']' | b'/' => {
                self.pos += 1;
                Tok::Punct(c as char)
            }
            b'[' => {
                // `[` opens either an Any/extension name (field position) or a list
                // (value position); the parser decides, the lexer only reports it.
                self.pos += 1;
                Tok::Punct('[')
            }
            b'"' | b'\'' => Tok::Str(self.string(c)?),
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.') => {
                let start = self.pos;
                while self.src.get(self.pos).is_some_and(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.')
                }) {
                    self.pos += 1;
                }
                Tok::Ident(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
            }
            other => {
                return Err(self.err(
                    line,
                    format!("unexpected character `{}`", other.escape_ascii()),
                ))
            }
        };
        Ok(Some((tok, line)))
    }

    /// A quoted string with C escapes (`\n`, `\t`, `\\`, `\"`, `\'`, octal `\ooo`, hex `\xHH`).
    fn string(&mut self, quote: u8) -> Result<Vec<u8>> {
        let line = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err(line, "string literal is not closed before end of file"));
            };
            self.pos += 1;
            match c {
                b'\n' => return Err(self.err(line, "string literal is not closed on its line")),
                c if c == quote => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.src.get(self.pos) else {
                        return Err(self.err(line, "string ends in a lone backslash"));
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'\\' | b'\'' | b'"' | b'?' => out.push(e),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.src.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            let byte = u8::try_from(v).map_err(|_| {
                                self.err(line, format!("octal escape \\{v:o} is above \\377"))
                            })?;
                            out.push(byte);
                        }
                        b'x' | b'X' => {
                            let mut v = 0u32;
                            let mut n = 0;
                            while n < 2 {
                                match self
                                    .src
                                    .get(self.pos)
                                    .and_then(|d| (*d as char).to_digit(16))
                                {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                        n += 1;
                                    }
                                    None => break,
                                }
                            }
                            if n == 0 {
                                return Err(self.err(line, "`\\x` escape without hex digits"));
                            }
                            out.push(v as u8);
                        }
                        other => {
                            return Err(self.err(
                                line,
                                format!("unknown escape `\\{}` in string", other.escape_ascii()),
                            ))
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Parses a whole text-format document into its top-level message.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Message> {
    let mut lexer = Lexer {
        src: text.as_bytes(),
        pos: 0,
        line: 1,
        origin,
    };
    let mut parser = Parser {
        peeked: None,
        lexer: &mut lexer,
        depth: 0,
    };
    parser.message(None)
}

/// The deepest message nesting accepted. TensorFlow Metadata schemas nest four or five levels;
/// the bound keeps a malicious or corrupt file from exhausting the stack.
pub(crate) const MAX_NESTING: usize = 64;

struct Parser<'l, 'a> {
    lexer: &'l mut Lexer<'a>,
    peeked: Option<Option<(Tok, usize)>>,
    /// Messages open around the current position.
    depth: usize,
}

impl Parser<'_, '_> {
    fn peek(&mut self) -> Result<Option<&(Tok, usize)>> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().and_then(|p| p.as_ref()))
    }

    fn bump(&mut self) -> Result<Option<(Tok, usize)>> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn line(&self) -> usize {
        self.lexer.line
    }

    /// Fields until `close` (or end of input for the top level).
    fn message(&mut self, close: Option<char>) -> Result<Message> {
        if self.depth >= MAX_NESTING {
            return Err(self.lexer.err(
                self.line(),
                format!("messages are nested more than {MAX_NESTING} deep; a schema never is: the file is corrupt"),
            ));
        }
        self.depth += 1;
        let msg = self.message_fields(close);
        self.depth -= 1;
        msg
    }

    fn message_fields(&mut self, close: Option<char>) -> Result<Message> {
        let mut msg = Message::default();
        loop {
            let Some((tok, line)) = self.bump()? else {
                return match close {
                    None => Ok(msg),
                    Some(c) => Err(self.lexer.err(
                        self.line(),
                        format!("expected `{c}` to close a message, found end of file"),
                    )),
                };
            };
            let name = match tok {
                Tok::Punct(c) if Some(c) == close => return Ok(msg),
                Tok::Punct(',') | Tok::Punct(';') => continue,
                Tok::Ident(name) => name,
                Tok::Punct('[') => self.bracketed_name(line)?,
                other => {
                    return Err(self.lexer.err(
                        line,
                        format!("expected a field name, found {}", describe(&other)),
                    ))
                }
            };
            self.field_value(&mut msg, name, line)?;
        }
    }

    fn bracketed_name(&mut self, line: usize) -> Result<String> {
        let mut name = String::new();
        loop {
            match self.bump()? {
                Some((Tok::Punct(']'), _)) => return Ok(format!("[{name}]")),
                Some((Tok::Ident(part), _)) => name.push_str(&part),
                Some((Tok::Punct('/'), _)) => name.push('/'),
                other => {
                    return Err(self.lexer.err(
                        line,
                        format!(
                            "expected `]` to close an extension name, found {}",
                            other
                                .map(|(t, _)| describe(&t))
                                .unwrap_or("end of file".into())
                        ),
                    ))
                }
            }
        }
    }

    fn field_value(&mut self, msg: &mut Message, name: String, line: usize) -> Result<()> {
        let mut saw_colon = false;
        if let Some((Tok::Punct(':'), _)) = self.peek()? {
            self.bump()?;
            saw_colon = true;
        }
        match self.bump()? {
            Some((Tok::Punct('{'), _)) => {
                let m = self.message(Some('}'))?;
                msg.fields.push(Field {
                    name,
                    line,
                    value: FieldValue::Message(m),
                });
            }
            Some((Tok::Punct('<'), _)) => {
                let m = self.message(Some('>'))?;
                msg.fields.push(Field {
                    name,
                    line,
                    value: FieldValue::Message(m),
                });
            }
            Some((Tok::Punct('['), _)) if saw_colon => loop {
                match self.bump()? {
                    Some((Tok::Punct(']'), _)) => break,
                    Some((Tok::Punct(','), _)) => continue,
                    Some((Tok::Punct('{'), l)) => {
                        let m = self.message(Some('}'))?;
                        msg.fields.push(Field {
                            name: name.clone(),
                            line: l,
                            value: FieldValue::Message(m),
                        });
                    }
                    Some((tok, l)) => {
                        let value = self.scalar(tok, l)?;
                        msg.fields.push(Field {
                            name: name.clone(),
                            line: l,
                            value,
                        });
                    }
                    None => return Err(self.lexer.err(line, "list value is not closed with `]`")),
                }
            },
            Some((tok, l)) if saw_colon => {
                let value = self.scalar(tok, l)?;
                msg.fields.push(Field { name, line, value });
            }
            Some((tok, l)) => {
                return Err(self.lexer.err(
                    l,
                    format!(
                        "expected `:` or `{{` after field `{name}`, found {}",
                        describe(&tok)
                    ),
                ))
            }
            None => {
                return Err(self.lexer.err(
                    line,
                    format!("field `{name}` has no value before end of file"),
                ))
            }
        }
        Ok(())
    }

    fn scalar(&mut self, tok: Tok, line: usize) -> Result<FieldValue> {
        match tok {
            Tok::Str(mut bytes) => {
                // Adjacent string literals concatenate.
                while let Some((Tok::Str(_), _)) = self.peek()? {
                    if let Some((Tok::Str(more), _)) = self.bump()? {
                        bytes.extend(more);
                    }
                }
                Ok(FieldValue::Scalar(Scalar::Bytes(bytes)))
            }
            Tok::Ident(t) => Ok(FieldValue::Scalar(Scalar::Token(t))),
            other => Err(self.lexer.err(
                line,
                format!("expected a value, found {}", describe(&other)),
            )),
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Punct(c) => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_messages_escapes_lists_and_comments() {
        let text = r#"
            # a comment
            feature {
              name: "a\"b" 'c'
              value: "\nG\001\377\x41"
              int_domain < max: 5 >
              tag: ["x", "y"]
            }
        "#;
        let m = parse(text, "t.pbtxt").unwrap();
        let f = m.get("feature").unwrap();
        let FieldValue::Message(f) = &f.value else {
            panic!()
        };
        assert_eq!(
            f.get("name").unwrap().value,
            FieldValue::Scalar(Scalar::Bytes(b"a\"bc".to_vec()))
        );
        assert_eq!(
            f.get("value").unwrap().value,
            FieldValue::Scalar(Scalar::Bytes(vec![b'\n', b'G', 1, 255, b'A']))
        );
        assert_eq!(f.all("tag").count(), 2);
        assert_eq!(f.get("int_domain").unwrap().line, 6);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "a {".repeat(20_000);
        let err = parse(&deep, "deep.pbtxt").unwrap_err().to_string();
        assert!(
            err.contains("nested more than 64") && err.contains("deep.pbtxt"),
            "{err}"
        );
        let ok = format!("{}{}", "a {".repeat(10), "}".repeat(10));
        assert!(parse(&ok, "ok.pbtxt").is_ok());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("feature {\n name: \"x\"\n", "s.pbtxt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.pbtxt:3"), "{err}");
        let err = parse("a {\n b \"x\" }", "s.pbtxt").unwrap_err().to_string();
        assert!(
            err.contains("s.pbtxt:2") && err.contains("expected `:`"),
            "{err}"
        );
    }
}
