/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * maps.bpf.h — the counter and ring-buffer helpers every object uses.
 *
 * The including object defines, before including this file, its
 * `counters` (a per-CPU array of __u64, indexed by its ABI counter enum),
 * its `events` ring buffer and its `wakeup_bytes` rodata; the maps differ
 * per object (their sizes and counters do), the helpers do not.
 */
#ifndef HDRTAP_MAPS_BPF_H
#define HDRTAP_MAPS_BPF_H

/* Add `n` to counter `idx`. */
static __always_inline void ctr_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n; /* per-CPU slot: no other writer */
}

/*
 * Waking the reader for every event costs the traced workload dearly (an
 * irq_work and a context switch per event: nginx+wrk on loopback lost 40% of
 * its throughput). The reader polls on a timer instead, and is woken early
 * only when the ring buffer fills past wakeup_bytes (three quarters of it:
 * rarer, longer bursts of the reader disturb the traced programs' scheduling
 * less; crates/hdrtap-bpf/src/ring.rs, wakeup_bytes).
 */
static __always_inline __u64 rb_flags_past(__u64 bytes)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= bytes ? BPF_RB_FORCE_WAKEUP
								       : BPF_RB_NO_WAKEUP;
}

/* The flags for bpf_ringbuf_submit/output: wake the reader past wakeup_bytes. */
static __always_inline __u64 rb_flags(void)
{
	return rb_flags_past(wakeup_bytes);
}

#endif /* HDRTAP_MAPS_BPF_H */
