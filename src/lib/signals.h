/* Process signals for the daemons: SIGINT/SIGTERM set a stop flag the
 * loops poll; SIGPIPE is ignored so a dropped socket is an error return,
 * not a death. Call once from main. */
#ifndef PAYTX_SIGNALS_H
#define PAYTX_SIGNALS_H

#include <signal.h>

extern volatile sig_atomic_t signals_stop;
void signals_install(void);

#endif
