//! Recursive-descent parser: tokens → [`Expr`], a tree of field tests.
//!
//! ```text
//! expr    := and (("or" | "||") and)*
//! and     := unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | "(" expr ")" | primitive
//! primitive :=
//!     [proto] [src|dst] host ADDR        host 10.0.0.1, ip6 src host ::1
//!     [proto] [src|dst] net CIDR         net 10.0.0.0/8, dst net fd00::/16
//!     [proto] [src|dst] ADDR             src 10.0.0.1 (host implied)
//!     [proto] [src|dst] port N           tcp dst port 80
//!     [proto] [src|dst] portrange A-B    portrange 8000-8100
//!     proto                              tcp udp icmp icmp6 arp ip ip6
//!     [ip|ip6] proto N                   ip proto 47
//!     vlan [ID]
//!     proto "[" FIELD "]" ["&" VALUE] ("="|"=="|"!=") VALUE
//!                                        tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn
//!                                        icmp[icmptype] == icmp-echo
//! VALUE   := NUMBER | NAME | VALUE "|" VALUE | "(" VALUE ")"
//! ```

use std::net::IpAddr;

use super::lexer::{Spanned, Tok};
use super::{FilterError, Proto};
use hdrtap_abi as abi;

/// A test of one kernel field (see `enum hdrtap_pf_field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// (field & mask) == value; `family` 4/6 for addresses (0: any).
    Cmp {
        field: u8,
        family: u8,
        value: [u64; 2],
        mask: [u64; 2],
    },
    /// (field & mask) != 0.
    Any { field: u8, mask: u64 },
    /// lo <= field <= hi.
    Range { field: u8, lo: u64, hi: u64 },
}

/// A boolean expression over field tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Test(Test),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }
    fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }
    fn not(a: Expr) -> Expr {
        Expr::Not(Box::new(a))
    }
}

fn eq(field: u32, v: u64) -> Expr {
    Expr::Test(Test::Cmp {
        field: field as u8,
        family: 0,
        value: [v, 0],
        mask: [u64::MAX, 0],
    })
}

/// True whenever `field` has a value.
fn present(field: u32) -> Expr {
    Expr::Test(Test::Cmp {
        field: field as u8,
        family: 0,
        value: [0, 0],
        mask: [0, 0],
    })
}

fn ethertype(t: u64) -> Expr {
    eq(abi::HDRTAP_PF_ETHERTYPE, t)
}

fn proto_test(p: Proto) -> Expr {
    match p {
        Proto::Ip => ethertype(0x0800),
        Proto::Ip6 => ethertype(0x86dd),
        Proto::Arp => ethertype(0x0806),
        Proto::Tcp => eq(abi::HDRTAP_PF_L4_PROTO, 6),
        Proto::Udp => eq(abi::HDRTAP_PF_L4_PROTO, 17),
        Proto::Icmp => Expr::and(ethertype(0x0800), eq(abi::HDRTAP_PF_L4_PROTO, 1)),
        Proto::Icmp6 => Expr::and(ethertype(0x86dd), eq(abi::HDRTAP_PF_L4_PROTO, 58)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
}

/// Named constants usable as values.
fn constant(name: &str) -> Option<u64> {
    Some(match name {
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-timxceed" => 11,
        "icmp6-destinationunreach" => 1,
        "icmp6-timeexceeded" => 3,
        "icmp6-echo" => 128,
        "icmp6-echoreply" => 129,
        "icmp6-routersolicit" => 133,
        "icmp6-routeradvert" => 134,
        "icmp6-neighborsolicit" => 135,
        "icmp6-neighboradvert" => 136,
        _ => return None,
    })
}

fn parse_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        s.parse().ok()
    } else {
        None
    }
}

/// 16 address bytes (IPv4 as ::ffff:a.b.c.d) as the kernel's two words.
pub fn addr_words(ip: IpAddr) -> ([u64; 2], u8) {
    let (bytes, fam) = match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 4),
        IpAddr::V6(v6) => (v6.octets(), 6),
    };
    (words(bytes), fam)
}

fn words(b: [u8; 16]) -> [u64; 2] {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(b.get(..8).unwrap_or(&[0; 8]));
    hi.copy_from_slice(b.get(8..).unwrap_or(&[0; 8]));
    [u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)]
}

/// Mask of the first `bits` bits of a 16-byte address, as two words.
fn prefix_words(bits: u32) -> [u64; 2] {
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        let start = i as u32 * 8;
        *byte = match bits.saturating_sub(start) {
            0 => 0,
            n if n >= 8 => 0xff,
            n => 0xffu8 << (8 - n),
        };
    }
    words(b)
}

/// Deepest nesting of parentheses and negations accepted. The parser is
/// recursive descent: without a bound, `((((...` or `not not not ...` from
/// the command line overflowed the stack (found by the filter_parse fuzz
/// target). A kernel program has at most 64 instructions anyway.
pub const MAX_DEPTH: usize = 128;

pub struct Parser<'a> {
    toks: &'a [Spanned],
    i: usize,
    /// Position just past the end of the input (for "expected ..." at the end).
    end: usize,
    /// Parentheses and negations open around the current token.
    depth: usize,
}

impl<'a> Parser<'a> {
    pub fn new(toks: &'a [Spanned], src_chars: usize) -> Self {
        Parser {
            toks,
            i: 0,
            end: src_chars + 1,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<&'a Spanned> {
        self.toks.get(self.i)
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.peek() {
            Some(Spanned {
                tok: Tok::Word(w), ..
            }) => Some(w.as_str()),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<&'a Spanned> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }

    fn err_here(&self, what: &str) -> FilterError {
        match self.peek() {
            Some(t) => FilterError::new(t.pos, t.tok.text(), what),
            None => FilterError::new(self.end, String::new(), what),
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), FilterError> {
        match self.peek() {
            Some(t) if t.tok == tok => {
                self.i += 1;
                Ok(())
            }
            _ => Err(self.err_here(what)),
        }
    }

    /// The whole input as one expression.
    pub fn parse_all(&mut self) -> Result<Expr, FilterError> {
        let e = self.parse_or()?;
        if self.peek().is_some() {
            return Err(self.err_here("expected 'and', 'or' or the end of the expression"));
        }
        Ok(e)
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.parse_and()?;
        while matches!(self.peek(), Some(Spanned { tok: Tok::OrOr, .. }))
            || self.peek_word() == Some("or")
        {
            self.i += 1;
            let r = self.parse_and()?;
            e = Expr::or(e, r);
        }
        Ok(e)
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.parse_unary()?;
        while matches!(
            self.peek(),
            Some(Spanned {
                tok: Tok::AndAnd,
                ..
            })
        ) || self.peek_word() == Some("and")
        {
            self.i += 1;
            let r = self.parse_unary()?;
            e = Expr::and(e, r);
        }
        Ok(e)
    }

    fn parse_unary(&mut self) -> Result<Expr, FilterError> {
        let nests = matches!(
            self.peek(),
            Some(Spanned {
                tok: Tok::Bang | Tok::LParen,
                ..
            })
        ) || self.peek_word() == Some("not");
        if !nests {
            return self.parse_unary_inner();
        }
        if self.depth >= MAX_DEPTH {
            return Err(self.err_here(&format!(
                "the expression is nested too deeply (at most {MAX_DEPTH} levels of parentheses and negations)"
            )));
        }
        self.depth += 1;
        let e = self.parse_unary_inner();
        self.depth -= 1;
        e
    }

    fn parse_unary_inner(&mut self) -> Result<Expr, FilterError> {
        match self.peek() {
            Some(Spanned { tok: Tok::Bang, .. }) => {
                self.i += 1;
                Ok(Expr::not(self.parse_unary()?))
            }
            Some(Spanned { tok: Tok::Word(w), .. }) if w == "not" => {
                self.i += 1;
                Ok(Expr::not(self.parse_unary()?))
            }
            Some(Spanned { tok: Tok::LParen, .. }) => {
                self.i += 1;
                let e = self.parse_or()?;
                self.expect(Tok::RParen, "expected ')'")?;
                Ok(e)
            }
            Some(_) => self.parse_primitive(),
            None => Err(self.err_here("expected a primitive (host, net, port, portrange, tcp, udp, icmp, icmp6, arp, ip, ip6, vlan, ...)")),
        }
    }

    fn parse_primitive(&mut self) -> Result<Expr, FilterError> {
        let start = self.i;
        let Some(w) = self.peek_word() else {
            return Err(self.err_here("expected a primitive (host, net, port, tcp, ...)"));
        };
        let proto = Proto::from_word(w);
        if let Some(p) = proto {
            self.i += 1;
            match (self.peek(), self.peek_word()) {
                (
                    Some(Spanned {
                        tok: Tok::LBracket, ..
                    }),
                    _,
                ) => return self.parse_field_test(p),
                (_, Some("proto")) if matches!(p, Proto::Ip | Proto::Ip6) => {
                    self.i += 1;
                    let n = self.number("expected a protocol number after 'proto'", 255)?;
                    return Ok(Expr::and(proto_test(p), eq(abi::HDRTAP_PF_L4_PROTO, n)));
                }
                (_, Some(w2)) if is_qualified_start(w2) => {
                    let inner = self.parse_qualified(Some(p))?;
                    return Ok(Expr::and(proto_test(p), inner));
                }
                _ => return Ok(proto_test(p)),
            }
        }
        match w {
            "proto" => {
                self.i += 1;
                let n = self.number("expected a protocol number after 'proto'", 255)?;
                Ok(eq(abi::HDRTAP_PF_L4_PROTO, n))
            }
            "vlan" => {
                self.i += 1;
                let any = Expr::Test(Test::Any {
                    field: abi::HDRTAP_PF_VLAN_COUNT as u8,
                    mask: 0xff,
                });
                match self.peek_word().and_then(parse_number) {
                    Some(id) => {
                        if id > 4095 {
                            return Err(self.err_here("a VLAN ID is 0 to 4095"));
                        }
                        self.i += 1;
                        Ok(Expr::or(
                            eq(abi::HDRTAP_PF_VLAN_OUTER, id),
                            eq(abi::HDRTAP_PF_VLAN_INNER, id),
                        ))
                    }
                    None => Ok(any),
                }
            }
            w if is_qualified_start(w) => self.parse_qualified(None),
            _ => {
                self.i = start;
                Err(self.err_here(
                    "unsupported token: expected a primitive (host, net, port, portrange, tcp, udp, icmp, icmp6, arp, ip, ip6, vlan, proto)",
                ))
            }
        }
    }

    /// `[src|dst] (host ADDR | net CIDR | port N | portrange A-B | ADDR)`.
    fn parse_qualified(&mut self, proto: Option<Proto>) -> Result<Expr, FilterError> {
        let dir = match self.peek_word() {
            Some("src") => {
                self.i += 1;
                Dir::Src
            }
            Some("dst") => {
                self.i += 1;
                Dir::Dst
            }
            _ => Dir::Either,
        };
        if let Some(w) = self.peek_word() {
            if w == "or" || w == "and" {
                return Err(self.err_here("'src or dst' / 'src and dst' qualifiers are not supported; write 'host X' or '(src host X and dst host Y)'"));
            }
        }
        let kw = self.peek_word();
        match kw {
            Some("host") => {
                self.i += 1;
                let (ip, pos) = self.address()?;
                self.check_family(proto, ip, pos)?;
                Ok(addr_test(dir, ip, if ip.is_ipv4() { 32 } else { 128 }))
            }
            Some("net") => {
                self.i += 1;
                let (ip, bits, pos) = self.cidr()?;
                self.check_family(proto, ip, pos)?;
                Ok(addr_test(dir, ip, bits))
            }
            Some("port") => {
                self.check_ports(proto)?;
                self.i += 1;
                let p = self.number("expected a port number (0-65535)", 65535)?;
                Ok(port_test(dir, p, p))
            }
            Some("portrange") => {
                self.check_ports(proto)?;
                self.i += 1;
                let t = self.next();
                let Some(Spanned {
                    tok: Tok::Word(r),
                    pos,
                }) = t
                else {
                    self.i -= 1;
                    return Err(self.err_here("expected a port range such as 8000-8100"));
                };
                let parsed = r
                    .split_once('-')
                    .and_then(|(a, b)| Some((parse_number(a)?, parse_number(b)?)));
                match parsed {
                    Some((a, b)) if a <= b && b <= 65535 => Ok(port_test(dir, a, b)),
                    _ => Err(FilterError::new(
                        *pos,
                        r.clone(),
                        "expected a port range A-B with 0 <= A <= B <= 65535",
                    )),
                }
            }
            Some(w) if w.parse::<IpAddr>().is_ok() && dir != Dir::Either => {
                let (ip, pos) = self.address()?;
                self.check_family(proto, ip, pos)?;
                Ok(addr_test(dir, ip, if ip.is_ipv4() { 32 } else { 128 }))
            }
            _ => Err(self.err_here("expected 'host', 'net', 'port' or 'portrange'")),
        }
    }

    fn check_ports(&self, proto: Option<Proto>) -> Result<(), FilterError> {
        match proto {
            None | Some(Proto::Tcp) | Some(Proto::Udp) | Some(Proto::Ip) | Some(Proto::Ip6) => {
                Ok(())
            }
            Some(_) => Err(self.err_here("ports apply to tcp and udp only")),
        }
    }

    fn check_family(
        &self,
        proto: Option<Proto>,
        ip: IpAddr,
        pos: usize,
    ) -> Result<(), FilterError> {
        let bad = matches!(
            (proto, ip),
            (Some(Proto::Ip6) | Some(Proto::Icmp6), IpAddr::V4(_))
        ) || matches!(
            (proto, ip),
            (
                Some(Proto::Ip) | Some(Proto::Arp) | Some(Proto::Icmp),
                IpAddr::V6(_)
            )
        );
        if bad {
            return Err(FilterError::new(
                pos,
                ip.to_string(),
                "address family does not match the protocol",
            ));
        }
        Ok(())
    }

    fn address(&mut self) -> Result<(IpAddr, usize), FilterError> {
        match self.next() {
            Some(Spanned {
                tok: Tok::Word(w),
                pos,
            }) => match w.parse::<IpAddr>() {
                Ok(ip) => Ok((ip, *pos)),
                Err(_) => Err(FilterError::new(
                    *pos,
                    w.clone(),
                    "expected an IPv4 or IPv6 address (host names are not resolved)",
                )),
            },
            _ => {
                self.i -= 1;
                Err(self.err_here("expected an IPv4 or IPv6 address"))
            }
        }
    }

    fn cidr(&mut self) -> Result<(IpAddr, u32, usize), FilterError> {
        match self.next() {
            Some(Spanned {
                tok: Tok::Word(w),
                pos,
            }) => {
                let (a, bits) = match w.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (w.as_str(), None),
                };
                let bad = || {
                    FilterError::new(
                        *pos,
                        w.clone(),
                        "expected a network such as 10.0.0.0/8 or fd00::/16",
                    )
                };
                let ip: IpAddr = a.parse().map_err(|_| bad())?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    Some(b) => b
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= max)
                        .ok_or_else(bad)?,
                    None => max,
                };
                // Host bits set below the prefix: tcpdump rejects these too.
                let (v, _) = addr_words(ip);
                let m = prefix_words(if ip.is_ipv4() { 96 + bits } else { bits });
                if v[0] & !m[0] != 0 || v[1] & !m[1] != 0 {
                    return Err(FilterError::new(
                        *pos,
                        w.clone(),
                        "non-network bits set in the address",
                    ));
                }
                Ok((ip, bits, *pos))
            }
            _ => {
                self.i -= 1;
                Err(self.err_here("expected a network such as 10.0.0.0/8"))
            }
        }
    }

    fn number(&mut self, what: &str, max: u64) -> Result<u64, FilterError> {
        match self.peek() {
            Some(Spanned {
                tok: Tok::Word(w),
                pos,
            }) => match parse_number(w) {
                Some(n) if n <= max => {
                    self.i += 1;
                    Ok(n)
                }
                _ => Err(FilterError::new(*pos, w.clone(), what)),
            },
            _ => Err(self.err_here(what)),
        }
    }

    /// `proto[FIELD] [& VALUE] RELOP VALUE`, the `[` next.
    fn parse_field_test(&mut self, p: Proto) -> Result<Expr, FilterError> {
        self.expect(Tok::LBracket, "expected '['")?;
        let field = match (p, self.peek_word()) {
            (Proto::Tcp, Some("tcpflags" | "13")) => abi::HDRTAP_PF_TCP_FLAGS,
            (Proto::Icmp, Some("icmptype" | "0")) | (Proto::Icmp6, Some("icmp6type" | "0")) => {
                abi::HDRTAP_PF_ICMP_TYPE
            }
            (Proto::Icmp, Some("icmpcode" | "1")) | (Proto::Icmp6, Some("icmp6code" | "1")) => {
                abi::HDRTAP_PF_ICMP_CODE
            }
            _ => {
                return Err(self.err_here(
                    "supported header fields: tcp[tcpflags] (tcp[13]), icmp[icmptype], icmp[icmpcode], icmp6[icmp6type], icmp6[icmp6code]",
                ))
            }
        };
        self.i += 1;
        self.expect(Tok::RBracket, "expected ']'")?;
        let mask = if matches!(self.peek(), Some(Spanned { tok: Tok::Amp, .. })) {
            self.i += 1;
            Some(self.value()? & 0xff)
        } else {
            None
        };
        let negate = match self.peek() {
            Some(Spanned { tok: Tok::Eq, .. }) => false,
            Some(Spanned { tok: Tok::Ne, .. }) => true,
            Some(Spanned {
                tok: Tok::Rel(_), ..
            }) => return Err(self.err_here("only '=', '==' and '!=' compare header fields")),
            _ => return Err(self.err_here("expected '=', '==' or '!='")),
        };
        self.i += 1;
        let vpos = self.peek().map(|t| t.pos).unwrap_or(self.end);
        let value = self.value()?;
        if value > 0xff {
            return Err(FilterError::new(
                vpos,
                value.to_string(),
                "the field is one byte (0-255)",
            ));
        }
        let m = mask.unwrap_or(0xff);
        // The test itself; for ICMP the protocol too (the type field also
        // exists for ICMPv6).
        let guard = match p {
            Proto::Icmp | Proto::Icmp6 => Some(proto_test(p)),
            _ => None,
        };
        let t = if negate && value == 0 && mask.is_some() {
            // "& M != 0": any of the bits set.
            Expr::Test(Test::Any {
                field: field as u8,
                mask: m,
            })
        } else {
            let cmp = Expr::Test(Test::Cmp {
                field: field as u8,
                family: 0,
                value: [value & m, 0],
                mask: [m, 0],
            });
            if value & !m != 0 {
                // Can never be equal: compare something impossible.
                return Err(FilterError::new(
                    vpos,
                    value.to_string(),
                    "value has bits outside the mask: never true",
                ));
            }
            if negate {
                // A packet without the field does not pass tcp[...] != V.
                Expr::and(present(field), Expr::not(cmp))
            } else {
                cmp
            }
        };
        Ok(match guard {
            Some(g) => Expr::and(g, t),
            None => t,
        })
    }

    /// VALUE := term ("|" term)*
    fn value(&mut self) -> Result<u64, FilterError> {
        let mut v = self.value_term()?;
        while matches!(self.peek(), Some(Spanned { tok: Tok::Pipe, .. })) {
            self.i += 1;
            v |= self.value_term()?;
        }
        Ok(v)
    }

    fn value_term(&mut self) -> Result<u64, FilterError> {
        match self.peek() {
            Some(Spanned {
                tok: Tok::LParen, ..
            }) => {
                self.i += 1;
                let v = self.value()?;
                self.expect(Tok::RParen, "expected ')'")?;
                Ok(v)
            }
            Some(Spanned {
                tok: Tok::Word(w),
                pos,
            }) => {
                let v = parse_number(w).or_else(|| constant(w));
                match v {
                    Some(v) => {
                        self.i += 1;
                        Ok(v)
                    }
                    None => Err(FilterError::new(
                        *pos,
                        w.clone(),
                        "expected a number or a constant such as tcp-syn",
                    )),
                }
            }
            _ => Err(self.err_here("expected a number or a constant such as tcp-syn")),
        }
    }
}

fn is_qualified_start(w: &str) -> bool {
    matches!(w, "src" | "dst" | "host" | "net" | "port" | "portrange")
}

fn addr_test(dir: Dir, ip: IpAddr, bits: u32) -> Expr {
    let (value, family) = addr_words(ip);
    let mask = prefix_words(if ip.is_ipv4() { 96 + bits } else { bits });
    let t = |field: u32| {
        Expr::Test(Test::Cmp {
            field: field as u8,
            family,
            value,
            mask,
        })
    };
    match dir {
        Dir::Src => t(abi::HDRTAP_PF_SRC_ADDR),
        Dir::Dst => t(abi::HDRTAP_PF_DST_ADDR),
        Dir::Either => Expr::or(t(abi::HDRTAP_PF_SRC_ADDR), t(abi::HDRTAP_PF_DST_ADDR)),
    }
}

fn port_test(dir: Dir, lo: u64, hi: u64) -> Expr {
    let t = |field: u32| {
        if lo == hi {
            eq(field, lo)
        } else {
            Expr::Test(Test::Range {
                field: field as u8,
                lo,
                hi,
            })
        }
    };
    match dir {
        Dir::Src => t(abi::HDRTAP_PF_SRC_PORT),
        Dir::Dst => t(abi::HDRTAP_PF_DST_PORT),
        Dir::Either => Expr::or(t(abi::HDRTAP_PF_SRC_PORT), t(abi::HDRTAP_PF_DST_PORT)),
    }
}
