#ifndef DKIM_DOVECOT_H
#define DKIM_DOVECOT_H

/* The Dovecot side of DKIM verification, shared by the delivery plugin
   (lib95_dkim_plugin.so) and the Sieve extension (lib90_sieve_dkim_plugin.so):
   the plugins' log event, resolvers kept alive for their cache, verifying a
   mail, and the summary of the result that Sieve tests and log lines use.
   The plugins link this code privately (hidden visibility), so nothing here
   is shared at run time except through dkim_plugin_delivery_summary()
   below.  Settings: dkim-settings.h; Dovecot versions:
   dkim-dovecot-version.h. */

#include "dkim.h"
#include "dkim-settings.h"

struct mail;
struct event;

/* Plugin entry points are the only symbols a plugin exports. */
#define DKIM_EXPORT __attribute__((visibility("default")))

/* The Sieve extension, and the Pigeonhole plugin (sieve_plugins) that
   registers it. */
#define DKIM_SIEVE_EXTENSION_NAME "vnd.dovecot.dkim"
#define DKIM_SIEVE_PLUGIN_NAME "sieve_dkim"

extern struct event_category event_category_dkim;

/* A child of parent in the "dkim" category, logging with a "dkim: "
   prefix: the parent of everything the plugins log. */
struct event *dkim_event_create(struct event *parent);

/*
 * Resolvers
 */

/* One resolver per distinct DNS configuration, created on first use and
   kept until the set is freed: their answer caches are what makes repeated
   verification cheap. */
struct dkim_resolver_set;

struct dkim_resolver_set *dkim_resolver_set_init(void);
void dkim_resolver_set_deinit(struct dkim_resolver_set **set);

/* Returns the resolver for this DNS configuration.  When it cannot be
   created (unreadable trust anchor, bad resolver address...), the reason is
   logged on event and the returned resolver answers every query with a
   DNS error: signed messages get temperror and are still delivered.  A
   failed creation is retried on the next call. */
dkim_resolver *dkim_resolver_set_get(struct dkim_resolver_set *set,
				     const struct dkim_resolver_config *dns,
				     struct event *event);

/*
 * Results
 */

struct dkim_signature_summary {
	enum dkim_result result;
	/* d= and s= (sanitized by dkimcore), NULL when missing */
	const char *domain;
	const char *selector;
	enum dkim_dnssec dnssec;
	/* d= aligns with the From domain (relaxed DMARC alignment) */
	bool aligned;
	/* dkim_reason_name() and the explanation; NULL on pass */
	const char *reason;
	const char *explanation;
};

struct dkim_summary {
	enum dkim_result verdict;
	/* The author domain (dkim.h), NULL if there is none: then no
	   signature is aligned, and no_author_domain says why (a phrase of
	   dkim_author_status_text()).  An author domain Dovecot's own reading
	   of the From field (message_address_parse(), what IMAP ENVELOPE and
	   Sieve's address test see) does not confirm is none. */
	const char *from_domain;
	const char *no_author_domain;
	const struct dkim_signature_summary *signatures;
	unsigned int signature_count;
	/* DKIM-Signature fields beyond dkim_max_signatures */
	unsigned int skipped_signatures;
	unsigned int duration_msecs;
	/* The message could not be read: verdict is temperror */
	bool unreadable;
};

/* Verifies mail's message (read once as a stream), checks the author
   domain against Dovecot's reading of the From field (see dkim_summary) and
   returns the summary, allocated from pool.  Logs one info line with the verdict, which is also
   the dkim_verify_finished event, a child of event (from
   dkim_event_create()).  If
   verifier_r is not NULL it receives the finished verifier (for
   Authentication-Results), to be freed by the caller; it is NULL when the
   message could not be read. */
struct dkim_summary *
dkim_verify_mail(struct mail *mail, const struct dkim_verify_settings *set,
		 dkim_resolver *resolver, pool_t pool,
		 struct event *event, dkim_verifier **verifier_r);

/* The summary when verification is switched off (dkim_verify = no). */
struct dkim_summary *dkim_summary_disabled(pool_t pool);

struct dkim_summary *
dkim_summary_dup(pool_t pool, const struct dkim_summary *summary);

/* Restricts a verdict to some signatures; NULL members match any. */
struct dkim_signature_filter {
	const char *const *domains;	/* d= equals one (case-insensitive) */
	const char *const *selectors;	/* s= equals one (case-insensitive) */
	bool aligned;			/* d= aligns with the From domain */
};

/* The verdict over the signatures the filter selects, derived by the rule
   of dkim_verifier_verdict(); none when no signature is selected.  With a
   NULL filter, the message verdict. */
enum dkim_result
dkim_summary_verdict(const struct dkim_summary *summary,
		     const struct dkim_signature_filter *filter);

/*
 * Delivery plugin -> Sieve extension
 */

/* Exported by lib95_dkim_plugin.so and found with dlsym(): while the
   delivery plugin runs the next deliver hook (Sieve), returns the summary
   of its verification when mail is the message being delivered, else NULL.
   The summary is valid until the hook returns. */
#define DKIM_DELIVERY_SUMMARY_SYMBOL "dkim_plugin_delivery_summary"
typedef const struct dkim_summary *
dkim_delivery_summary_func_t(const struct mail *mail);

#endif
