//! Request body framing: the chunked transfer-coding decoder (RFC 9112 section 7.1).
//! Content-Length bodies need no decoding; the connection loop reads them in place.
//!
//! The decoder is incremental and pure: it is fed whatever bytes arrived, appends decoded data to
//! the caller's reused buffer, and says how much input it consumed. It never allocates beyond
//! `max_body` and bounds every line it must scan (chunk size, extensions, trailers).

use crate::error::{Error, Kind};

/// Longest chunk-size line we accept after the digits (extensions); RFC 9112 7.1.1 lets a server
/// limit extensions, and nothing the gateway serves uses them.
const MAX_EXTENSION_BYTES: usize = 4096;
/// 16 hex digits already exceed any body we accept; more is an attack on the size parser.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Size,
    SizeWs,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Incremental chunked decoder; one per request (cheap to create).
#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
    size: u64,
    digits: u8,
    line: usize,
    trailer: usize,
    max_body: usize,
    max_trailer: usize,
}

fn bad(msg: &'static str) -> Error {
    Error::client(Kind::BadRequest, msg)
}

impl Chunked {
    /// A decoder that refuses bodies over `max_body` bytes and trailers over `max_trailer` bytes.
    pub fn new(max_body: usize, max_trailer: usize) -> Self {
        Chunked { state: State::Size, size: 0, digits: 0, line: 0, trailer: 0, max_body, max_trailer }
    }

    /// Whether the final chunk and trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes as much of `input` as possible, appending data to `out`. Returns the number of input
    /// bytes consumed; stops right after the end of the message so pipelined bytes stay unread.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits == MAX_SIZE_DIGITS {
                            return Err(bad("chunk size too long"));
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = (self.size << 4) | d;
                        self.digits += 1;
                        i += 1;
                    }
                    b';' if self.digits > 0 => {
                        self.state = State::Extension;
                        self.line = 0;
                        i += 1;
                    }
                    // chunk-ext = *( BWS ";" BWS ext ): whitespace may only precede a ';'.
                    b' ' | b'\t' if self.digits > 0 => {
                        self.state = State::SizeWs;
                        self.line = 0;
                        i += 1;
                    }
                    b'\r' if self.digits > 0 => {
                        self.state = State::SizeLf;
                        i += 1;
                    }
                    _ => return Err(bad("invalid chunk size (hex digits only)")),
                },
                State::SizeWs => {
                    match b {
                        b' ' | b'\t' => {
                            self.line += 1;
                            if self.line > MAX_EXTENSION_BYTES {
                                return Err(bad("chunk extension too long"));
                            }
                        }
                        b';' => self.state = State::Extension,
                        b'\r' => self.state = State::SizeLf,
                        _ => return Err(bad("invalid chunk size line (only ';' may follow the size)")),
                    }
                    i += 1;
                }
                State::Extension => {
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\t' | b' '..=b'~' | 0x80..=0xff => {
                            self.line += 1;
                            if self.line > MAX_EXTENSION_BYTES {
                                return Err(bad("chunk extension too long"));
                            }
                        }
                        _ => return Err(bad("invalid character in chunk extension")),
                    }
                    i += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(bad("chunk size line must end in CRLF"));
                    }
                    i += 1;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        if (out.len() as u64).saturating_add(self.size) > self.max_body as u64 {
                            return Err(Error::client(Kind::BodyTooLarge, "request body too large"));
                        }
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    let n = (input.len() - i).min(self.size as usize);
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = State::Size;
                    self.size = 0;
                    self.digits = 0;
                    i += 1;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::EndLf;
                        i += 1;
                    } else {
                        self.state = State::TrailerLine;
                    }
                }
                State::TrailerLine => {
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                        _ => return Err(bad("invalid character in trailer")),
                    }
                    self.trailer += 1;
                    if self.trailer > self.max_trailer {
                        return Err(Error::client(Kind::HeadTooLarge, "trailer section too large"));
                    }
                    i += 1;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(bad("trailer line must end in CRLF"));
                    }
                    self.state = State::TrailerStart;
                    i += 1;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(bad("chunked body must end in CRLF"));
                    }
                    self.state = State::Done;
                    i += 1;
                }
                State::Done => break,
            }
        }
        Ok(i)
    }
}
