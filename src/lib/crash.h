/* Named crash points for recovery tests.
 *
 * PAYTX_CRASH_AT=<name>[,<name>...] makes the process SIGKILL itself the
 * first time it reaches a point of that name (optionally "<name>@N" for the
 * N-th time). Compiled into every build; when the variable is unset a point
 * costs one predictable branch. Single-threaded use.
 */
#ifndef PAYTX_CRASH_H
#define PAYTX_CRASH_H

#include <stdbool.h>

extern bool crash_armed; /* true when PAYTX_CRASH_AT is set */

void crash_init(void);
void crash_hit(const char *name);

/* Fault injection for chaos tests: PAYTX_FAULT_DUPLICATE_PCT=N makes
 * crash_duplicate() true for about N% of calls (seeded by
 * PAYTX_FAULT_SEED, default the pid), so that many protocol messages are
 * published twice. Off (and one branch) when unset. */
extern unsigned crash_duplicate_pct;
bool crash_duplicate(void);

#define crash_point(name) do { if (crash_armed) crash_hit(name); } while (0)

#endif
