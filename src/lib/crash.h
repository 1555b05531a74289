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

#define crash_point(name) do { if (crash_armed) crash_hit(name); } while (0)

#endif
