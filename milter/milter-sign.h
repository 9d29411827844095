/*
 * Who is signed, and with which keys (dkim-milter(8), WHO IS SIGNED):
 *
 *   - our own mail: from a client that logged in ({auth_authen}) or from
 *     InternalHosts (default 127.0.0.1 and ::1, which includes Postfix's
 *     pickup of local sendmail), whose From the SigningTable (or Domain)
 *     covers.  A logged-in user's From must also be one the user may
 *     use, by the submission plugin's rule (dkim-sign-from.h):
 *     the login's own domain, or its SignFromTable patterns.
 *   - forwarded mail: an outsider's message to a ResignMailTo recipient
 *     is ARC-sealed and DKIM-signed with the forwarding domain's key,
 *     except when its From is in one of our own signing domains: then it
 *     is only sealed, because a signature aligned with a forged From
 *     would hand a forger a DMARC pass.
 *   - everything else is verified (Mode v).
 */
#ifndef MILTER_SIGN_H
#define MILTER_SIGN_H

#include "milter-config.h"
#include "milter-keys.h"

#include <stdbool.h>

enum milter_route {
	MILTER_ROUTE_NONE,	/* neither signed nor verified */
	MILTER_ROUTE_SIGN,	/* our own mail */
	MILTER_ROUTE_FORWARD,	/* forwarded: verified, sealed, signed */
	MILTER_ROUTE_VERIFY,	/* an outsider's mail */
};

enum milter_route milter_route(const struct milter_config *config,
			       bool logged_in, bool internal,
			       bool to_forwarder);

enum milter_plan_outcome {
	MILTER_PLAN_SIGN,		/* keys and/or a seal */
	MILTER_PLAN_UNSIGNED,		/* nothing to sign: not an error */
	MILTER_PLAN_UNAUTHORIZED,	/* a user's From they may not use */
	MILTER_PLAN_FAILED,		/* a table or key cannot be used */
};

struct milter_plan {
	struct milter_keyset keys;	/* one DKIM-Signature each */
	/* the ARC seal (forwarded mail), or NULL; points into seal_keys */
	const struct milter_key *seal;
	struct milter_keyset seal_keys;
	/* why nothing (or not everything) is signed, for the log */
	char reason[512];
};

/* Our own mail.  `login` is {auth_authen} or NULL; `from` the single
 * From address (milter-from.h) or NULL, with `from_problem` saying why.
 * The caller holds keys (milter_keys_begin()). */
enum milter_plan_outcome
milter_plan_own(const struct milter_config *config, const char *login,
		const char *from, const char *from_problem,
		struct milter_plan *plan);

/* Forwarded mail to `recipient`, the ResignMailTo entry's value
 * `keyname` (a KeyTable key, or NULL for the recipient's own keys). */
enum milter_plan_outcome
milter_plan_forward(const struct milter_config *config,
		    const char *recipient, const char *keyname,
		    const char *from, const char *from_problem,
		    struct milter_plan *plan);

void milter_plan_free(struct milter_plan *plan);

#endif
