#ifndef SUBMISSION_DKIM_PLUGIN_H
#define SUBMISSION_DKIM_PLUGIN_H

#include "dkim-dovecot.h"

/* The only symbols the module exports (everything else is hidden). */
struct module;

/* Dovecot reads the version through a pointer, the binary dependency as
 * the array itself (module-dir.c). */
extern DKIM_EXPORT const char *submission_dkim_plugin_version;
extern DKIM_EXPORT const char
	submission_dkim_plugin_binary_dependency[];

DKIM_EXPORT void submission_dkim_plugin_init(struct module *module);
DKIM_EXPORT void submission_dkim_plugin_deinit(void);

#endif
