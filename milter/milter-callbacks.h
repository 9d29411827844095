/*
 * The libmilter side: one context per connection (libmilter runs each in
 * a thread of its own) and one message at a time in it, both freed on
 * every path (end of message, abort, close).  What the MTA sends is
 * handed to milter-message.c; what it returns is turned into replies
 * and header changes.
 */
#ifndef MILTER_CALLBACKS_H
#define MILTER_CALLBACKS_H

#include "milter-config.h"

#include <libmilter/mfapi.h>

/* The filter description for smfi_register(); the configuration must
 * outlive every connection. */
struct smfiDesc *milter_callbacks(const struct milter_config *config);

/* Connections open now (to let them end before shutting down). */
unsigned milter_connections_open(void);

#endif
