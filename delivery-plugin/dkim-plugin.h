#ifndef DKIM_PLUGIN_H
#define DKIM_PLUGIN_H

#include "dkim-dovecot.h"

struct module;

/* Dovecot module interface of lib95_dkim_plugin.so (module "dkim").  The
   file name sorts after lib90_sieve_plugin.so on purpose: Pigeonhole's
   deliver hook never calls the hook installed before it, so ours must be
   installed after it and call it. */
DKIM_EXPORT extern const char *dkim_plugin_version;

DKIM_EXPORT void dkim_plugin_init(struct module *module);
DKIM_EXPORT void dkim_plugin_deinit(void);

/* See dkim_delivery_summary_func_t in dkim-dovecot.h. */
DKIM_EXPORT const struct dkim_summary *
dkim_plugin_delivery_summary(const struct mail *mail);

#endif
