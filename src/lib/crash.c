/* Named crash points: PAYTX_CRASH_AT=<name>[@N][,...] kills the process. */
#include "crash.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool crash_armed = false;
static const char *crash_spec;
static unsigned long crash_counts[32];

unsigned crash_duplicate_pct = 0;
static uint64_t crash_rng;

void crash_init(void)
{
	crash_spec = getenv("PAYTX_CRASH_AT");
	crash_armed = crash_spec && crash_spec[0];
	const char *dup = getenv("PAYTX_FAULT_DUPLICATE_PCT");
	const char *seed = getenv("PAYTX_FAULT_SEED");
	crash_duplicate_pct = dup ? (unsigned)strtoul(dup, NULL, 10) : 0;
	crash_rng = seed ? strtoull(seed, NULL, 10) : (uint64_t)getpid();
	crash_rng = crash_rng * 2862933555777941757ULL + 3037000493ULL;
}

bool crash_duplicate(void)
{
	if (!crash_duplicate_pct)
		return false;
	crash_rng ^= crash_rng << 13; /* xorshift64 */
	crash_rng ^= crash_rng >> 7;
	crash_rng ^= crash_rng << 17;
	return crash_rng % 100 < crash_duplicate_pct;
}

/* Find name in the comma-separated spec; return its index and wanted hit. */
static int crash_lookup(const char *name, unsigned long *nth)
{
	size_t nlen = strlen(name);
	int idx = 0;
	for (const char *p = crash_spec; p && *p; idx++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *at = memchr(p, '@', len);
		size_t name_len = at ? (size_t)(at - p) : len;
		if (name_len == nlen && memcmp(p, name, nlen) == 0) {
			*nth = at ? strtoul(at + 1, NULL, 10) : 1;
			return idx;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}

void crash_hit(const char *name)
{
	unsigned long nth;
	int idx = crash_lookup(name, &nth);
	if (idx < 0 || idx >= 32)
		return;
	if (++crash_counts[idx] < nth)
		return;
	fprintf(stderr, "{\"level\":\"warn\",\"msg\":\"crash point %s reached: killing self\"}\n",
		name);
	fflush(stderr);
	kill(getpid(), SIGKILL);
	_exit(137);
}
