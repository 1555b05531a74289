/* Per-phase time of a batched loop, logged once per period. */
#include "loopstat.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

void loopstat_init(struct loopstat *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->period_start_us = clock_mono_us();
}

void loopstat_begin(struct loopstat *s)
{
	s->mark_us = clock_mono_us();
}

void loopstat_mark(struct loopstat *s, int i, const char *name)
{
	int64_t now = clock_mono_us();
	if (i >= 0 && i < LOOPSTAT_PHASES) {
		s->phase[i] = name;
		s->spent_us[i] += now - s->mark_us;
	}
	s->mark_us = now;
}

void loopstat_end(struct loopstat *s, size_t messages)
{
	int64_t now = clock_mono_us();
	s->iterations++;
	s->messages += messages;
	int64_t period = now - s->period_start_us;
	if (period < (int64_t)LOOPSTAT_PERIOD_MS * 1000)
		return;
	if (s->messages) {
		char parts[256] = "";
		size_t off = 0;
		for (int i = 0; i < LOOPSTAT_PHASES && off < sizeof(parts); i++)
			if (s->phase[i])
				off += (size_t)snprintf(parts + off, sizeof(parts) - off, "%s%s %.0f%%",
							off ? ", " : "", s->phase[i],
							100.0 * (double)s->spent_us[i] / (double)period);
		log_info("%s: %llu iterations, %llu messages (%.1f per batch) in %.1f s; %s",
			 s->name, (unsigned long long)s->iterations,
			 (unsigned long long)s->messages,
			 (double)s->messages / (double)s->iterations, (double)period / 1e6, parts);
	}
	const char *name = s->name;
	loopstat_init(s, name);
}
