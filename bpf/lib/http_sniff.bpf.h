/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * http_sniff.bpf.h — decide from a connection's first bytes whether it may
 * speak HTTP (1.x or 2), so that the kernel stops copying payload of
 * connections that do not.
 *
 * Header-only and free of BPF helpers so that it also compiles on the host:
 * crates/hdrtap-bpf/src/sniff.rs runs it over a table of inputs through
 * a host build of this file.
 *
 * The gate is deliberately coarse: the first four bytes must be the start of
 * a known request method, of "HTTP" (a status line), of "PRI " (HTTP/2's
 * client preface), or of a SETTINGS frame header (00 LL LL 04: an HTTP/2
 * server may write its preface before it reads the client's). Userspace
 * does the real parsing and flags what is not HTTP after all. Four bytes
 * compared as one word keep the program branch-light, which the verifier
 * needs (a byte-by-byte grammar here made it explore over a million
 * states). Fewer than four bytes so far (a client writing one byte per
 * syscall) gives MAYBE when they are a prefix of a token; the caller keeps
 * sniffing.
 *
 * A connection found mid-stream has no first bytes to look at: each call
 * must start like a message, or (HTTP/2) with a plausible 9-byte frame
 * header, hdrtap_h2_frame_plausible.
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
		/* HTTP/2 client preface */
		HDRTAP_TOK('P', 'R', 'I', ' '),
	};
	unsigned int mask, i;

	if (n > 4)
		n = 4;
	mask = n >= 4 ? 0xffffffffu : (1u << (8 * n)) - 1;
	/* An HTTP/2 SETTINGS frame header: 00 LL LL 04 (length < 64 KiB). */
	if (n >= 1 && (w & 0xff) == 0) {
		if (n < 4)
			return HDRTAP_SNIFF_MAYBE;
		if ((w >> 24) == 0x04)
			return HDRTAP_SNIFF_HTTP;
	}
#pragma unroll
	for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {
		if (((w ^ toks[i]) & mask) == 0)
			return n >= 4 ? HDRTAP_SNIFF_HTTP : HDRTAP_SNIFF_MAYBE;
	}
	return HDRTAP_SNIFF_NO;
}

/* Bytes of an HTTP/2 frame header. */
#define HDRTAP_H2_FRAME_HDR 9

/*
 * Whether h[0..9] could be an HTTP/2 frame header (RFC 9113 §4.1, §6): a
 * length within the default SETTINGS_MAX_FRAME_SIZE, a known type with
 * only the flags it defines, the reserved bit clear, and a stream id that
 * is zero exactly for the connection-level types. Random bytes pass about
 * once in tens of thousands; TLS records and text never (their first byte
 * is not 0).
 */
static __always_inline int hdrtap_h2_frame_plausible(const unsigned char *h)
{
	unsigned int len = (unsigned int)h[0] << 16 | (unsigned int)h[1] << 8 | h[2];
	unsigned int type = h[3], flags = h[4];
	unsigned int stream = (unsigned int)(h[5] & 0x7f) << 24 | (unsigned int)h[6] << 16 |
			      (unsigned int)h[7] << 8 | h[8];

	if ((h[5] & 0x80) || len > 16384)
		return 0;
	switch (type) {
	case 0: /* DATA: END_STREAM, PADDED */
		return stream != 0 && !(flags & ~0x09u);
	case 1: /* HEADERS: END_STREAM, END_HEADERS, PADDED, PRIORITY */
		return stream != 0 && len > 0 && !(flags & ~0x2du);
	case 2: /* PRIORITY */
		return stream != 0 && len == 5 && flags == 0;
	case 3: /* RST_STREAM */
		return stream != 0 && len == 4 && flags == 0;
	case 4: /* SETTINGS: ACK */
		return stream == 0 && len % 6 == 0 && !(flags & ~0x01u) && (!(flags & 1) || len == 0);
	case 5: /* PUSH_PROMISE: END_HEADERS, PADDED */
		return stream != 0 && !(flags & ~0x0cu);
	case 6: /* PING: ACK */
		return stream == 0 && len == 8 && !(flags & ~0x01u);
	case 7: /* GOAWAY */
		return stream == 0 && len >= 8 && flags == 0;
	case 8: /* WINDOW_UPDATE */
		return len == 4 && flags == 0;
	case 9: /* CONTINUATION: END_HEADERS */
		return stream != 0 && !(flags & ~0x04u);
	}
	return 0;
}

#endif /* HDRTAP_HTTP_SNIFF_BPF_H */
