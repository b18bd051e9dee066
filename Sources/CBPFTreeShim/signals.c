#include "shim_signals.h"

#include <signal.h>
#include <string.h>

/* ---- signals that arrive before the service handles them ---- */

static volatile sig_atomic_t bt_held_hangups, bt_held_stops;

static void bt_hold_handler(int sig)
{
	if (sig == SIGHUP)
		bt_held_hangups++;
	else
		bt_held_stops++;
}

void bt_hold_signals(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = bt_hold_handler;
	sigemptyset(&action.sa_mask);
	action.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
}

int bt_held_signal_count(int stop)
{
	return stop ? bt_held_stops : bt_held_hangups;
}

/* Runs before Swift's main, as soon as the executable's libraries are loaded (glibc passes argc and
 * argv to init_array functions): the long-running service holds its signals from then on. */
__attribute__((constructor)) static void bt_hold_signals_early(int argc, char **argv)
{
	if (argc < 2 || !argv || strcmp(argv[1], "reconcile") != 0)
		return;
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--once") == 0 || strcmp(argv[i], "--") == 0)
			return;
	bt_hold_signals();
}
