/* A Dovecot dict reached by running "doveadm dict" (the tools include no
 * Dovecot header): what dkim-keys uses for tables that the submission
 * plugin reads as "dict:NAME". */
#ifndef DOVEADM_DICT_H
#define DOVEADM_DICT_H

#include "dkim.h"

#include <stddef.h>

/* Longest doveadm output read, and how long one doveadm may run. */
#define DOVEADM_DICT_MAX_OUTPUT (64 * 1024 * 1024)
#define DOVEADM_DICT_TIMEOUT_SECS 60

struct doveadm_dict {
	const char *doveadm;	/* the program, found in PATH */
	const char *config;	/* doveadm -c, or NULL */
	/* how doveadm names the dict: Dovecot 2.3 takes the dict URI
	 * (which always holds a ':', e.g. "proxy::dkim"), 2.4 the filter
	 * that holds it ("dkim_dict/NAME") */
	char *target;
};

struct doveadm_dict_row {
	char *key;
	char *value;
};

/* `name` is what follows "dict:" in the table setting. */
void doveadm_dict_init(struct doveadm_dict *dict, const char *doveadm,
		       const char *config, const char *name);
void doveadm_dict_deinit(struct doveadm_dict *dict);

/* Every key under `prefix` (e.g. "shared/dkim/key/") with its value.
 * Returns 0 with the rows set (free them with doveadm_dict_rows_free()),
 * -1 with error set (what doveadm said, or why it could not run). */
int doveadm_dict_iter(const struct doveadm_dict *dict, const char *prefix,
		      struct doveadm_dict_row **rows_r, size_t *count_r,
		      struct dkim_error *error);
void doveadm_dict_rows_free(struct doveadm_dict_row **rows, size_t count);
int doveadm_dict_set(const struct doveadm_dict *dict, const char *key,
		     const char *value, struct dkim_error *error);
int doveadm_dict_unset(const struct doveadm_dict *dict, const char *key,
		       struct dkim_error *error);

/* Parses doveadm's "-f json" output of dict iter: an array of objects
 * with the string members "key" and "value" (a null value reads as "").
 * Returns 0, or -1 with error set for anything else. */
int doveadm_dict_parse_json(const char *text, size_t len,
			    struct doveadm_dict_row **rows_r,
			    size_t *count_r, struct dkim_error *error);

#endif
