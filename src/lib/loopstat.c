/* Per-phase time of a batched loop, logged once per period and counted in metrics. */
#include "loopstat.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/* Start a new logging period; what is still to be pushed is kept. */
static void period_start(struct loopstat *s)
{
	memset(s->spent_us, 0, sizeof(s->spent_us));
	s->iterations = 0;
	s->messages = 0;
	s->period_start_us = clock_mono_us();
}

void loopstat_init(struct loopstat *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	snprintf(s->label, sizeof(s->label), "%.*s", (int)strcspn(name, " "), name);
	period_start(s);
	s->next_push_us = s->period_start_us + (int64_t)LOOPSTAT_PUSH_MS * 1000;
}

void loopstat_push(struct loopstat *s)
{
	for (int i = 0; i < LOOPSTAT_PHASES; i++) {
		if (s->phase[i] && s->push_us[i] > 0)
			metrics_inc(METRIC_LOOP_PHASE_US, "loop", s->label, "phase", s->phase[i],
				    (uint64_t)s->push_us[i]);
		s->push_us[i] = 0;
	}
	if (s->push_iterations)
		metrics_inc(METRIC_LOOP_ITERATIONS, "loop", s->label, NULL, NULL,
			    s->push_iterations);
	if (s->push_messages)
		metrics_inc(METRIC_LOOP_MESSAGES, "loop", s->label, NULL, NULL, s->push_messages);
	s->push_iterations = 0;
	s->push_messages = 0;
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
		s->push_us[i] += now - s->mark_us;
	}
	s->mark_us = now;
}

void loopstat_end(struct loopstat *s, size_t messages)
{
	int64_t now = clock_mono_us();
	s->iterations++;
	s->messages += messages;
	s->push_iterations++;
	s->push_messages += messages;
	if (now >= s->next_push_us) {
		loopstat_push(s);
		s->next_push_us = now + (int64_t)LOOPSTAT_PUSH_MS * 1000;
	}
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
	period_start(s);
}
