/* Time sources: wall clock in Unix epoch ms for messages and deadlines,
 * monotonic ms for timers and latency. Thread-safe. */
#ifndef PAYTX_CLOCK_H
#define PAYTX_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
void clock_sleep_ms(int64_t ms);

#endif
