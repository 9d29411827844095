/*
 * Verification: the core's verifier over the message as it arrived, the
 * Authentication-Results value with our authserv-id, and the action the
 * On-* keywords give for its verdict.  Also the resolvers every
 * verification (and ARC sealing) uses.
 */
#ifndef MILTER_VERIFY_H
#define MILTER_VERIFY_H

#include "dkim.h"
#include "milter-config.h"

/* libunbound resolvers for Nameservers and TrustAnchorFile, shared by the
 * connections: one resolver is used by one thread at a time (dkim.h), so
 * a message takes one for its life and gives it back, with its cache of
 * key records, for the next.  milter_resolvers_init() makes a first one,
 * so that a wrong setting is reported at start-up. */
int milter_resolvers_init(const struct milter_config *config,
			  struct dkim_error *error);
void milter_resolvers_deinit(void);
dkim_resolver *milter_resolver_get(struct dkim_error *error);
void milter_resolver_put(dkim_resolver **resolver);

/* A verifier with the configuration's settings (MinimumKeyBits,
 * MaximumSignaturesToVerify, DNSTimeout, ClockDrift, MaximumHeaders). */
dkim_verifier *milter_verifier_new(const struct milter_config *config,
				   dkim_resolver *resolver);

struct milter_verdict {
	enum dkim_result result;	/* the message verdict */
	/* The case (MILTER_ON_COUNT for a pass, which is always accepted)
	 * and the action configured for it. */
	enum milter_on on;
	enum milter_action action;
	/* why, for the log and the SMTP reply: "fail (body-hash-mismatch)" */
	char summary[128];
};

/* Judges a finished verifier.  A signature whose key is in testing mode
 * (t=y) never makes the message refused. */
void milter_verdict_get(const struct milter_config *config,
			const dkim_verifier *verifier,
			struct milter_verdict *verdict_r);

#endif
