#ifndef SUBMISSION_DKIM_PLUGIN_H
#define SUBMISSION_DKIM_PLUGIN_H

/* The only symbols the module exports (everything else is hidden). */
#define SUBMISSION_DKIM_EXPORT __attribute__((visibility("default")))

struct module;

/* Dovecot reads the version through a pointer, the binary dependency as
 * the array itself (module-dir.c). */
extern SUBMISSION_DKIM_EXPORT const char *submission_dkim_plugin_version;
extern SUBMISSION_DKIM_EXPORT const char
	submission_dkim_plugin_binary_dependency[];

SUBMISSION_DKIM_EXPORT void submission_dkim_plugin_init(struct module *module);
SUBMISSION_DKIM_EXPORT void submission_dkim_plugin_deinit(void);

#endif
