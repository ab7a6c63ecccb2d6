/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Host build of the kernel's HTTP gate, so Rust tests can run the very same code. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "../../../bpf/lib/http_sniff.bpf.h"

int hdrtap_sniff_word_host(unsigned int w, unsigned int n)
{
	return hdrtap_sniff_word(w, n);
}

int hdrtap_h2_frame_plausible_host(const unsigned char *h)
{
	return hdrtap_h2_frame_plausible(h);
}
