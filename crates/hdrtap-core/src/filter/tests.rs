use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::packet::build::*;

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 9, 8);

fn fields_of(s: &FrameSpec) -> Fields {
    extract(&build(s), abi::HDRTAP_LINK_ETHER as u8, None, 0)
}

fn accepts(expr: &str, s: &FrameSpec) -> bool {
    compile(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(&fields_of(s))
}

fn tcp(flags: u8) -> FrameSpec {
    FrameSpec::tcp4(A4, B4, 40000, 80, flags)
}

fn udp6() -> FrameSpec {
    FrameSpec::udp6(
        "fd00::1".parse().unwrap(),
        "fd00::2".parse().unwrap(),
        5353,
        53,
    )
}

fn arp() -> FrameSpec {
    FrameSpec {
        dst: [0xff; 6],
        src: [2, 0, 0, 0, 0, 1],
        vlans: vec![],
        l3: L3::Arp {
            op: 1,
            sha: [2, 0, 0, 0, 0, 1],
            spa: A4,
            tha: [0; 6],
            tpa: B4,
        },
        l4: L4::None,
        payload: vec![],
    }
}

fn icmp4() -> FrameSpec {
    let mut s = tcp(0);
    s.l4 = L4::Icmp {
        icmp_type: 8,
        code: 0,
        id: 1,
        seq: 1,
    };
    s
}

#[test]
fn empty_accepts_everything() {
    let p = compile("   ").unwrap();
    assert!(p.insns.is_empty());
    assert!(p.matches(&Fields::default()));
}

#[test]
fn protocols() {
    assert!(accepts("tcp", &tcp(2)));
    assert!(!accepts("udp", &tcp(2)));
    assert!(accepts("udp and ip6", &udp6()));
    assert!(!accepts("ip", &udp6()));
    assert!(accepts("arp", &arp()));
    assert!(!accepts("ip or ip6", &arp()));
    assert!(accepts("icmp", &icmp4()));
    assert!(!accepts("icmp6", &icmp4()));
    assert!(accepts("ip proto 17", &{
        let mut s = tcp(0);
        s.l4 = L4::Udp { sport: 1, dport: 2 };
        s
    }));
}

#[test]
fn hosts_nets_ports() {
    let s = tcp(2);
    assert!(accepts("host 10.1.2.3", &s));
    assert!(accepts("src host 10.1.2.3", &s));
    assert!(!accepts("dst host 10.1.2.3", &s));
    assert!(accepts("dst 192.168.9.8", &s));
    assert!(accepts("net 10.0.0.0/8", &s));
    assert!(!accepts("net 10.2.0.0/16", &s));
    assert!(accepts(
        "dst net 192.168.0.0/16 and src net 10.1.2.0/24",
        &s
    ));
    assert!(accepts("port 80", &s));
    assert!(accepts("tcp dst port 80", &s));
    assert!(!accepts("udp port 80", &s));
    assert!(!accepts("src port 80", &s));
    assert!(accepts("portrange 39999-40001", &s));
    assert!(!accepts("portrange 1-79", &s));
    assert!(accepts("host fd00::2 and udp port 53", &udp6()));
    assert!(accepts("net fd00::/16", &udp6()));
    // An IPv4 address never matches an IPv6 packet, even one whose bytes
    // look like ::ffff:a.b.c.d.
    let mapped = FrameSpec::udp6(
        "::ffff:10.1.2.3".parse::<Ipv6Addr>().unwrap(),
        "fd00::2".parse().unwrap(),
        1,
        2,
    );
    assert!(!accepts("host 10.1.2.3", &mapped));
    assert!(accepts("host ::ffff:10.1.2.3", &mapped));
    // ARP's addresses count as hosts, as in tcpdump.
    assert!(accepts("host 192.168.9.8", &arp()));
    assert!(!accepts("port 80", &arp()));
    assert!(accepts("not port 80", &arp()));
}

#[test]
fn vlan_tests() {
    let mut s = udp6();
    assert!(!accepts("vlan", &s));
    s.vlans = vec![(0x88a8, 100), (0x8100, 200)];
    assert!(accepts("vlan", &s));
    assert!(accepts("vlan 100", &s));
    assert!(accepts("vlan 200 and udp port 53", &s));
    assert!(!accepts("vlan 300", &s));
    // An offloaded tag counts as the outer one.
    let f = extract(&build(&udp6()), 0, Some(0x2000 | 7), 0);
    assert!(compile("vlan 7 and udp").unwrap().matches(&f));
}

#[test]
fn tcp_flag_tests() {
    let syn = tcp(0x02);
    let synack = tcp(0x12);
    let ack = tcp(0x10);
    let e = "tcp[tcpflags] & tcp-syn != 0";
    assert!(accepts(e, &syn) && accepts(e, &synack) && !accepts(e, &ack));
    let e = "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn";
    assert!(accepts(e, &syn) && !accepts(e, &synack) && !accepts(e, &ack));
    assert!(accepts("tcp[13] = 0x12", &synack));
    assert!(accepts("tcp[tcpflags] & tcp-ack = 0", &syn));
    let e = "tcp[tcpflags] != 0x10";
    assert!(accepts(e, &syn) && !accepts(e, &ack));
    // Not TCP: a flag test is false either way.
    assert!(!accepts("tcp[tcpflags] != 0x10", &udp6()));
    assert!(!accepts("tcp[tcpflags] & tcp-syn = 0", &udp6()));
    assert!(accepts("icmp[icmptype] == icmp-echo", &icmp4()));
    assert!(!accepts("icmp[icmptype] == icmp-echoreply", &icmp4()));
}

#[test]
fn boolean_structure_and_precedence() {
    let s = tcp(2);
    assert!(accepts("udp or tcp and port 80", &s));
    assert!(!accepts("(udp or tcp) and port 81", &s));
    assert!(accepts("!udp && (port 81 || port 80)", &s));
    assert!(accepts("not not tcp", &s));
    assert!(accepts("not (udp or arp)", &s));
}

#[test]
fn errors_name_the_token_and_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("tcp and prot 80", 9, "prot"),
        ("port", 5, ""),
        ("port 99999", 6, "99999"),
        ("host example.com", 6, "example.com"),
        ("net 10.0.0.1/8", 5, "10.0.0.1/8"),
        ("(tcp", 5, ""),
        ("tcp)", 4, ")"),
        ("portrange 90-80", 11, "90-80"),
        ("tcp[tcpflags] > 0", 15, ">"),
        ("udp[0] = 1", 5, "0"),
        ("tcp and", 8, ""),
        ("vlan 5000", 6, "5000"),
        ("src or dst host 1.2.3.4", 5, "or"),
        ("ip6 host 10.0.0.1", 10, "10.0.0.1"),
        ("icmp port 1", 6, "port"),
        ("tcp && ; ", 8, ";"),
        ("ether host 1:2:3:4:5:6", 1, "ether"),
    ];
    for (expr, pos, tok) in cases {
        let e = compile(expr).expect_err(expr);
        assert_eq!((e.pos, e.token.as_str()), (*pos, *tok), "{expr}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("position {pos}")), "{msg}");
    }
}

#[test]
fn too_long_is_an_error() {
    let long = (1..40)
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let e = compile(&long).unwrap_err();
    assert!(e.message.contains("kernel instructions"), "{e}");
}

#[test]
fn fields_follow_the_kernel_rules() {
    // Ports only when the transport header is there.
    let mut s = tcp(2);
    if let L3::V4 { frag_offset, .. } = &mut s.l3 {
        *frag_offset = 8;
    }
    let f = fields_of(&s);
    assert!(f.has(abi::HDRTAP_PF_L4_PROTO) && !f.has(abi::HDRTAP_PF_SRC_PORT));
    assert_eq!(
        f.flags & abi::HDRTAP_PKT_F_FRAGMENT as u16,
        abi::HDRTAP_PKT_F_FRAGMENT as u16
    );
    // A third VLAN tag stops the parser.
    let mut s = udp6();
    s.vlans = vec![(0x8100, 1), (0x8100, 2), (0x8100, 3)];
    let f = fields_of(&s);
    assert_eq!(f.ethertype, 0x8100);
    assert!(!f.has(abi::HDRTAP_PF_SRC_ADDR));
    assert_ne!(f.flags & abi::HDRTAP_PKT_F_PARSE_LIMIT as u16, 0);
}

fn arb_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("ip".to_string()),
        Just("ip6".to_string()),
        Just("arp".to_string()),
        Just("vlan".to_string()),
        (0u16..3).prop_map(|p| format!("port {}", [53, 80, 40000][p as usize])),
        Just("host 10.1.2.3".to_string()),
        Just("net 192.168.0.0/16".to_string()),
        Just("tcp[tcpflags] & tcp-syn != 0".to_string()),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} and {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.prop_map(|a| format!("not {a}")),
        ]
    })
}

/// A direct interpretation of an expression (no compilation), to check
/// the compiler and the stack evaluator against.
fn direct(expr: &str, f: &Fields) -> bool {
    let e = lexer::lex(expr).unwrap();
    let tree = Parser::new(&e, expr.chars().count()).parse_all().unwrap();
    fn go(e: &Expr, f: &Fields) -> bool {
        match e {
            Expr::And(a, b) => go(a, f) && go(b, f),
            Expr::Or(a, b) => go(a, f) || go(b, f),
            Expr::Not(a) => !go(a, f),
            Expr::Test(t) => {
                let mut out = Vec::new();
                emit(&Expr::Test(t.clone()), &mut out);
                eval(&out, f)
            }
        }
    }
    go(&tree, f)
}

proptest! {
    #[test]
    fn stack_evaluation_matches_the_tree(expr in arb_expr(), which in 0usize..4) {
        let s = [tcp(0x12), udp6(), arp(), icmp4()][which].clone();
        let f = fields_of(&s);
        if let Ok(p) = compile(&expr) {
            prop_assert_eq!(p.matches(&f), direct(&expr, &f), "{}", expr);
        }
    }

    #[test]
    fn garbage_expressions_never_panic(s in "[ -~]{0,60}") {
        let _ = compile(&s);
    }
}

/// Regression (fuzz target filter_parse): deep nesting and endless chains
/// overflowed the stack of the recursive-descent parser (SIGABRT); they are
/// errors now, with the position of the first token past the limit.
#[test]
fn deep_nesting_and_long_chains_are_errors_not_stack_overflows() {
    let deep = format!("{}tcp{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = compile(&deep).unwrap_err();
    assert!(e.message.contains("too long"), "{e}");
    let nested = format!("{}tcp{}", "(".repeat(200), ")".repeat(200));
    let e = compile(&nested).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    assert_eq!(e.pos, parser::MAX_DEPTH + 1);
    let nots = "not ".repeat(60_000) + "tcp";
    assert!(compile(&nots).is_err());
    let bangs = "!".repeat(300) + "tcp";
    assert!(compile(&bangs)
        .unwrap_err()
        .message
        .contains("nested too deeply"));
    let chain = vec!["tcp"; 20_000].join(" and ");
    assert!(compile(&chain).unwrap_err().message.contains("too long"));
    // Within the limits, nesting still works.
    let ok = format!("{}tcp{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(compile(&ok).unwrap().insns.len(), 1);
}
