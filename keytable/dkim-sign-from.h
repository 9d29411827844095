/*
 * Which From addresses an authenticated user may have signed: one rule for
 * every front end that signs for logged-in users (the Dovecot submission
 * plugin, dkim-milter), so a user gets the same answer whichever way the
 * mail leaves.  Plain C, no Dovecot.
 */
#ifndef DKIM_SIGN_FROM_H
#define DKIM_SIGN_FROM_H

#include <stdbool.h>

/* True if the user who logged in as `login` may have mail signed whose
 * single From address is `from_address` (local@domain):
 *
 *   - the domain of the login itself (the part after its last '@'), so
 *     alice@example.com may sign as anyone@example.com;
 *   - or one of `patterns` (NULL-terminated, NULL for none): a pattern
 *     with an '@' is matched against the whole address, one without
 *     against the domain, as dkim_wildcard_match() does ('*' matches any
 *     run of characters, case-insensitively).
 *
 * `login` is NULL for a user without a name of their own (Dovecot's
 * anonymous login): only the patterns apply then.  A login without '@'
 * has no own domain. */
bool dkim_sign_from_permitted(const char *login, const char *from_address,
			      const char *const *patterns);

#endif
