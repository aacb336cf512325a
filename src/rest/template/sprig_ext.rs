//! Sprig's random, date and regular-expression functions and Higress's caller functions
//! (`getRealIP`, `getSocketIP`): the functions whose result depends on more than their
//! arguments (see [`Func::is_impure`]), and the regex family. Dates are in `clock`.

use std::rc::Rc;

use super::common::{RenderError, MAX_OUTPUT};
use super::func::*;
use super::funcs::{int_arg, to_i64};
use super::render::{Ev, SCAN_COST};
use super::value::Val;

/// Fills `b` from the system's secure random source.
fn random(b: &mut [u8]) -> Result<(), Fail> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new().fill(b).map_err(|_| Fail::Msg("no randomness available".into()))
}

fn hex_byte(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]
}

/// Largest compiled pattern of the regex functions (a pattern may come from the arguments).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl<'r> Ev<'r, '_> {
    /// The functions of this module (arity already checked at compile time).
    pub(super) fn apply_ext(
        &mut self,
        f: Func,
        a: &[Val<'r>],
        out: Option<&mut Vec<u8>>,
    ) -> Result<Ret<'r>, Fail> {
        let arg = |i: usize| a.get(i).unwrap_or(&MISSING);
        let (a0, a1, a2) = (arg(0), arg(1), arg(2));
        let val = |v: Val<'r>| Ok(Ret::Val(v));
        match f {
            Func::Uuidv4 => {
                let mut b = [0u8; 16];
                random(&mut b)?;
                b[6] = (b[6] & 0x0f) | 0x40; // version 4
                b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
                self.emit(out, |_, o, _| {
                    for (i, x) in b.iter().enumerate() {
                        if matches!(i, 4 | 6 | 8 | 10) {
                            o.push(b'-');
                        }
                        o.extend_from_slice(&hex_byte(*x));
                    }
                    Ok(())
                })
            }
            Func::RandAlphaNum | Func::RandAlpha | Func::RandNumeric | Func::RandAscii => {
                let n = usize::try_from(int_arg(a0, "the length")?.max(0)).unwrap_or(0);
                if n > 4096 {
                    return fail("a random string is at most 4096 characters");
                }
                let set: &[u8] = match f {
                    Func::RandAlphaNum => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                    Func::RandAlpha => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    Func::RandNumeric => b"0123456789",
                    _ => b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
                };
                let mut bytes = vec![0u8; n * 2];
                random(&mut bytes)?;
                self.emit(out, |_, o, _| {
                    // Two random bytes per character: the modulo bias is under 0.2%.
                    for pair in bytes.chunks_exact(2) {
                        let r = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
                        o.push(set[r % set.len()]);
                    }
                    Ok(())
                })
            }
            Func::Now => val(Val::Owned(Rc::from(super::clock::now_text()))),
            Func::Date | Func::DateInZone | Func::HtmlDate | Func::HtmlDateInZone => {
                let (layout, time, zone) = match f {
                    Func::Date => (Some(a0), a1, None),
                    Func::DateInZone => (Some(a0), a1, Some(a2)),
                    Func::HtmlDate => (None, a0, None),
                    _ => (None, a0, Some(a1)),
                };
                let (mut t0, mut t1) = (Vec::new(), Vec::new());
                let layout = match layout {
                    Some(l) => self.text(l, &mut t0)?.to_string(),
                    None => "2006-01-02".to_string(),
                };
                let zone = match zone {
                    Some(z) => super::clock::zone(self.text(z, &mut t1)?),
                    None => jiff::tz::TimeZone::UTC,
                };
                let at = self.instant(time);
                let mut text = String::new();
                super::clock::format(&mut text, &layout, &at.to_zoned(zone));
                self.emit(out, |ev, o, _| {
                    ev.charge(text.len())?;
                    o.extend_from_slice(text.as_bytes());
                    Ok(())
                })
            }
            Func::UnixEpoch => val(Val::Int(self.instant(a0).as_second())),
            Func::DateModify => {
                let mut t0 = Vec::new();
                let by = self.text(a0, &mut t0)?;
                let Some(d) = super::clock::go_duration(by) else {
                    return fail(format!("{by:?} is not a duration (such as -1.5h or 2h45m)"));
                };
                let at = self.instant(a1).checked_add(d).map_err(|e| Fail::Msg(e.to_string()))?;
                let mut text = String::new();
                super::clock::format(
                    &mut text,
                    super::clock::GO_STRING,
                    &at.to_zoned(jiff::tz::TimeZone::UTC),
                );
                val(Val::Owned(Rc::from(text)))
            }
            Func::GetRealIp | Func::GetSocketIp => {
                let ip = if f == Func::GetRealIp { self.cx.client.real_ip() } else { self.cx.client.peer };
                match ip {
                    Some(ip) => val(Val::Owned(Rc::from(ip.to_string()))),
                    None => val(Val::Str("")),
                }
            }
            Func::RegexMatch => {
                let re = self.regex(a0)?;
                let mut t = Vec::new();
                val(Val::Bool(re.is_match(self.text(a1, &mut t)?)))
            }
            Func::RegexFind => {
                let re = self.regex(a0)?;
                let mut t = Vec::new();
                let found = re.find(self.text(a1, &mut t)?).map_or("", |m| m.as_str()).to_string();
                val(Val::Owned(Rc::from(found)))
            }
            Func::RegexFindAll | Func::RegexSplit => {
                let re = self.regex(a0)?;
                let n = int_arg(a2, "n")?;
                let mut t = Vec::new();
                let s = self.text(a1, &mut t)?;
                let limit = if n < 0 { usize::MAX } else { usize::try_from(n).unwrap_or(usize::MAX) };
                let parts: Vec<String> = if f == Func::RegexFindAll {
                    re.find_iter(s).take(limit).map(|m| m.as_str().to_string()).collect()
                } else if n == 0 {
                    Vec::new()
                } else {
                    re.splitn(s, limit).map(str::to_string).collect()
                };
                self.charge(parts.len() * SCAN_COST)?;
                let items: Rc<[Val<'r>]> = parts.into_iter().map(|p| Val::Owned(Rc::from(p))).collect();
                val(Val::List(items, 1))
            }
            Func::RegexReplaceAll | Func::RegexReplaceAllLiteral => {
                let re = self.regex(a0)?;
                let (mut t1, mut t2) = (Vec::new(), Vec::new());
                let s = self.text(a1, &mut t1)?.to_string();
                let with = self.text(a2, &mut t2)?;
                let replaced = if f == Func::RegexReplaceAll {
                    re.replace_all(&s, with).into_owned()
                } else {
                    re.replace_all(&s, regex::NoExpand(with)).into_owned()
                };
                if replaced.len() > MAX_OUTPUT {
                    return Err(RenderError::OutputTooLarge.into());
                }
                self.charge(replaced.len())?;
                val(Val::Owned(Rc::from(replaced)))
            }
            _ => fail(format!("{} is not an extension function", f.name())),
        }
    }

    /// A time argument of the date functions (see `clock`).
    fn instant(&mut self, v: &Val<'r>) -> jiff::Timestamp {
        let seconds = match v {
            Val::Int(_) | Val::Uint(_) | Val::Float(_) => Some(to_i64(v)),
            _ => None,
        };
        super::clock::instant(v.as_str(), seconds)
    }

    /// The pattern of a regex function, compiled (RE2 syntax, as Go's `regexp`; linear time).
    fn regex(&mut self, pattern: &Val<'r>) -> Result<regex::Regex, Fail> {
        let mut t = Vec::new();
        let p = self.text(pattern, &mut t)?;
        self.charge(p.len() * 16)?;
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| Fail::Msg(format!("invalid pattern: {e}")))
    }
}
