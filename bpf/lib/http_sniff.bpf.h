/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * http_sniff.bpf.h — decide from a connection's first bytes whether it may
 * speak HTTP/1.x, so that the kernel stops copying payload of connections
 * that do not.
 *
 * Header-only and free of BPF helpers so that it also compiles on the host:
 * crates/hdrtap-bpf/tests/sniff.rs runs it over a table of inputs through
 * a host build of this file.
 *
 * The gate is deliberately coarse: the first four bytes must be the start of
 * a known request method or of "HTTP" (a status line). Userspace does the
 * real parsing and flags what is not HTTP after all. Four bytes compared as
 * one word keep the program branch-light, which the verifier needs (a
 * byte-by-byte grammar here made it explore over a million states).
 * Fewer than four bytes so far (a client writing one byte per syscall) gives
 * MAYBE when they are a prefix of a token; the caller keeps sniffing.
 */
#ifndef HDRTAP_HTTP_SNIFF_BPF_H
#define HDRTAP_HTTP_SNIFF_BPF_H

#define HDRTAP_SNIFF_NO 0
#define HDRTAP_SNIFF_MAYBE 1
#define HDRTAP_SNIFF_HTTP 2

#define HDRTAP_TOK(a, b, c, d) \
	((unsigned int)(a) | (unsigned int)(b) << 8 | (unsigned int)(c) << 16 | (unsigned int)(d) << 24)

/*
 * w holds a stream's first n (0..4) bytes, little-endian: byte 0 in the low
 * 8 bits; bits past n bytes are ignored.
 */
static __always_inline int hdrtap_sniff_word(unsigned int w, unsigned int n)
{
	static const unsigned int toks[] = {
		HDRTAP_TOK('G', 'E', 'T', ' '), HDRTAP_TOK('P', 'U', 'T', ' '),
		HDRTAP_TOK('P', 'O', 'S', 'T'), HDRTAP_TOK('H', 'E', 'A', 'D'),
		HDRTAP_TOK('D', 'E', 'L', 'E'), HDRTAP_TOK('O', 'P', 'T', 'I'),
		HDRTAP_TOK('P', 'A', 'T', 'C'), HDRTAP_TOK('C', 'O', 'N', 'N'),
		HDRTAP_TOK('T', 'R', 'A', 'C'), HDRTAP_TOK('H', 'T', 'T', 'P'),
		/* WebDAV */
		HDRTAP_TOK('P', 'R', 'O', 'P'), HDRTAP_TOK('M', 'K', 'C', 'O'),
		HDRTAP_TOK('C', 'O', 'P', 'Y'), HDRTAP_TOK('M', 'O', 'V', 'E'),
		HDRTAP_TOK('L', 'O', 'C', 'K'), HDRTAP_TOK('U', 'N', 'L', 'O'),
		HDRTAP_TOK('R', 'E', 'P', 'O'), HDRTAP_TOK('S', 'E', 'A', 'R'),
	};
	unsigned int mask, i;

	if (n > 4)
		n = 4;
	mask = n >= 4 ? 0xffffffffu : (1u << (8 * n)) - 1;
#pragma unroll
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		if (((w ^ toks[i]) & mask) == 0)
			return n >= 4 ? HDRTAP_SNIFF_HTTP : HDRTAP_SNIFF_MAYBE;
	}
	return HDRTAP_SNIFF_NO;
}

#endif /* HDRTAP_HTTP_SNIFF_BPF_H */
