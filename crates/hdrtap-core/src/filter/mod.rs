//! tcpdump-style filter expressions, compiled for the kernel.
//!
//! `hdrtap packets ... tcp and port 80` joins the trailing arguments into
//! one expression; [`compile`] lexes it ([`lexer`]), parses it by recursive
//! descent into a tree of field tests ([`parser`]), and flattens the tree
//! into a postfix program of at most `HDRTAP_PF_MAX_INSNS` instructions
//! (`struct hdrtap_pf_insn`, bpf/include/hdrtap_abi.h) that the kernel runs
//! on every packet before copying anything. [`eval`] is the reference
//! evaluator of that program over [`fields::Fields`], the Rust mirror of
//! what the kernel parser extracts.
//!
//! ```
//! use hdrtap_core::filter::compile;
//! let prog = compile("tcp and (port 80 or port 443) and not src net 10.0.0.0/8").unwrap();
//! assert!(prog.insns.len() <= 64);
//! let err = compile("tcp and prot 80").unwrap_err();
//! assert_eq!(err.pos, 9);
//! assert_eq!(err.token, "prot");
//! ```
//!
//! Differences from tcpdump, on purpose: hosts are addresses, never names;
//! `vlan [ID]` tests the outer or the inner tag and the other primitives
//! always look through up to two VLAN tags (tcpdump needs `vlan and ...`);
//! `tcp`, `udp` and `icmp6` follow the IPv6 extension-header chain.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod fields;
pub mod lexer;
pub mod parser;
#[cfg(test)]
mod tests;

use hdrtap_abi::{self as abi, PfInsn};

pub use fields::{extract, Fields};
use parser::{Expr, Parser, Test};

/// A protocol keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
}

impl Proto {
    fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            _ => return None,
        })
    }
}

/// Why an expression was not accepted: where, which token, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FilterError {
    /// 1-based character position of the token in the expression.
    pub pos: usize,
    /// The offending token as written (empty at the end of the input).
    pub token: String,
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(pos: usize, token: impl Into<String>, message: &str) -> Self {
        FilterError {
            pos,
            token: token.into(),
            message: message.to_string(),
        }
    }

    fn render(&self) -> String {
        if self.token.is_empty() {
            format!(
                "filter expression: at position {} (end of expression): {}",
                self.pos, self.message
            )
        } else {
            format!(
                "filter expression: {:?} at position {}: {}",
                self.token, self.pos, self.message
            )
        }
    }
}

/// A compiled filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    /// Postfix instructions; empty accepts everything.
    pub insns: Vec<PfInsn>,
    /// The expression it came from (normalized spacing).
    pub source: String,
}

impl Program {
    /// The kernel's `struct hdrtap_pf_prog` bytes.
    pub fn encode(&self) -> Vec<u8> {
        // compile() never makes a program longer than the kernel takes.
        abi::encode_pf_prog(&self.insns).unwrap_or_default()
    }

    /// The reference verdict for a packet with these fields.
    pub fn matches(&self, f: &Fields) -> bool {
        eval(&self.insns, f)
    }
}

/// Most tokens an expression may have (see [`compile`]).
pub const MAX_TOKENS: usize = 1024;

/// Compile an expression; empty (or only spaces) accepts everything.
pub fn compile(src: &str) -> Result<Program, FilterError> {
    let toks = lexer::lex(src)?;
    if toks.is_empty() {
        return Ok(Program::default());
    }
    // Chains of `and`/`or` build trees as deep as they are long, which are
    // walked (and dropped) recursively: bound the length before parsing.
    // 64 instructions never need anywhere near this many tokens.
    if let Some(t) = toks.get(MAX_TOKENS) {
        return Err(FilterError::new(
            t.pos,
            t.tok.text(),
            &format!("the expression is too long (at most {MAX_TOKENS} tokens)"),
        ));
    }
    let expr = Parser::new(&toks, src.chars().count()).parse_all()?;
    let mut insns = Vec::new();
    let depth = emit(&expr, &mut insns);
    let max = abi::HDRTAP_PF_MAX_INSNS as usize;
    if insns.len() > max || depth > 64 {
        return Err(FilterError::new(
            1,
            src.trim(),
            &format!(
                "the expression compiles to {} kernel instructions (at most {max}); simplify it",
                insns.len()
            ),
        ));
    }
    let source = src.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Program { insns, source })
}

/// Emit `e` in postfix; returns the stack depth it needs.
fn emit(e: &Expr, out: &mut Vec<PfInsn>) -> usize {
    let op = |op: u32| PfInsn {
        op: op as u8,
        ..PfInsn::default()
    };
    match e {
        Expr::Test(t) => {
            out.push(match *t {
                Test::Cmp {
                    field,
                    family,
                    value,
                    mask,
                } => PfInsn {
                    op: abi::HDRTAP_PF_OP_CMP as u8,
                    field,
                    family,
                    value,
                    mask,
                },
                Test::Any { field, mask } => PfInsn {
                    op: abi::HDRTAP_PF_OP_ANY as u8,
                    field,
                    family: 0,
                    value: [0, 0],
                    mask: [mask, 0],
                },
                Test::Range { field, lo, hi } => PfInsn {
                    op: abi::HDRTAP_PF_OP_RANGE as u8,
                    field,
                    family: 0,
                    value: [lo, 0],
                    mask: [hi, 0],
                },
            });
            1
        }
        Expr::Not(a) => {
            let d = emit(a, out);
            out.push(op(abi::HDRTAP_PF_OP_NOT));
            d
        }
        Expr::And(a, b) | Expr::Or(a, b) => {
            let da = emit(a, out);
            let db = emit(b, out);
            out.push(op(if matches!(e, Expr::And(..)) {
                abi::HDRTAP_PF_OP_AND
            } else {
                abi::HDRTAP_PF_OP_OR
            }));
            da.max(db + 1)
        }
    }
}

/// One instruction's test, exactly as `pf_test()` in bpf/lib/pkt.bpf.h.
fn test(i: &PfInsn, f: &Fields) -> bool {
    let field = u32::from(i.field);
    let Some((lo, hi)) = f.get(field) else {
        return false;
    };
    if (field == abi::HDRTAP_PF_SRC_ADDR || field == abi::HDRTAP_PF_DST_ADDR)
        && i.family != 0
        && i.family != f.family
    {
        return false;
    }
    match u32::from(i.op) {
        abi::HDRTAP_PF_OP_CMP => lo & i.mask[0] == i.value[0] && hi & i.mask[1] == i.value[1],
        abi::HDRTAP_PF_OP_ANY => lo & i.mask[0] != 0 || hi & i.mask[1] != 0,
        abi::HDRTAP_PF_OP_RANGE => lo >= i.value[0] && lo <= i.mask[0],
        _ => false,
    }
}

/// Run a program over a packet's fields, exactly as `pf_step()` in
/// bpf/net/packets.bpf.c: a stack of booleans in the bits of one u64.
pub fn eval(insns: &[PfInsn], f: &Fields) -> bool {
    if insns.is_empty() {
        return true;
    }
    let mut stack: u64 = 0;
    for i in insns.iter().take(abi::HDRTAP_PF_MAX_INSNS as usize) {
        match u32::from(i.op) {
            abi::HDRTAP_PF_OP_AND => {
                let t = stack & 1;
                stack >>= 1;
                if t == 0 {
                    stack &= !1;
                }
            }
            abi::HDRTAP_PF_OP_OR => {
                let t = stack & 1;
                stack >>= 1;
                stack |= t;
            }
            abi::HDRTAP_PF_OP_NOT => stack ^= 1,
            abi::HDRTAP_PF_OP_TRUE => stack = stack << 1 | 1,
            _ => stack = stack << 1 | u64::from(test(i, f)),
        }
    }
    stack & 1 == 1
}
