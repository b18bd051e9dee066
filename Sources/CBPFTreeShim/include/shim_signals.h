/* Signals held at start-up (signals.c). */
#ifndef BPFTREE_SHIM_SIGNALS_H
#define BPFTREE_SHIM_SIGNALS_H

#include <stddef.h>
#include <stdint.h>

/** Makes SIGHUP, SIGTERM and SIGINT only counted, until the service installs its own handling: the
 *  service calls this first thing, so that a signal at start-up neither kills it nor is lost. */
void bt_hold_signals(void);
/** How many SIGTERM/SIGINT (`stop` != 0) or SIGHUP were counted by bt_hold_signals' handler. */
int bt_held_signal_count(int stop);

#endif
