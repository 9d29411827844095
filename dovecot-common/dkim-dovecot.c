/* Dovecot-side DKIM verification shared by the delivery plugin and the Sieve
   extension; see dkim-dovecot.h. */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "str-sanitize.h"
#include "istream.h"
#include "time-util.h"
#include "message-address.h"
#include "mail-storage.h"
#include "dkim-dovecot.h"

/* Bounds on message-derived text in log lines. */
#define DKIM_LOG_MAX_DOMAIN 255
#define DKIM_LOG_MAX_EXPLANATION 300

struct event_category event_category_dkim = {
	.name = "dkim",
};

struct event *dkim_event_create(struct event *parent)
{
	struct event *event = event_create(parent);

	event_add_category(event, &event_category_dkim);
	event_set_append_log_prefix(event, "dkim: ");
	return event;
}

/*
 * Resolvers
 */

struct dkim_resolver_entry {
	char *dns_key;
	dkim_resolver *resolver;
};

struct dkim_resolver_set {
	ARRAY(struct dkim_resolver_entry) entries;
	/* Stands in for a resolver that could not be created. */
	dkim_resolver *unavailable;
};

struct dkim_resolver_set *dkim_resolver_set_init(void)
{
	struct dkim_resolver_set *set = i_new(struct dkim_resolver_set, 1);

	i_array_init(&set->entries, 4);
	return set;
}

void dkim_resolver_set_deinit(struct dkim_resolver_set **_set)
{
	struct dkim_resolver_set *set = *_set;
	struct dkim_resolver_entry *entry;

	*_set = NULL;
	array_foreach_modifiable(&set->entries, entry) {
		dkim_resolver_free(&entry->resolver);
		i_free(entry->dns_key);
	}
	array_free(&set->entries);
	if (set->unavailable != NULL)
		dkim_resolver_free(&set->unavailable);
	i_free(set);
}

static enum dkim_dns_status
unavailable_lookup(void *context ATTR_UNUSED, const char *qname ATTR_UNUSED,
		   struct dkim_dns_answer *answer)
{
	dkim_dns_answer_set_detail(answer,
		"resolver unavailable (configuration error, see the error log)");
	return DKIM_DNS_ERROR;
}

static dkim_resolver *resolver_unavailable(struct dkim_resolver_set *set)
{
	if (set->unavailable == NULL) {
		set->unavailable =
			dkim_resolver_new_custom(unavailable_lookup, NULL);
	}
	return set->unavailable;
}

dkim_resolver *dkim_resolver_set_get(struct dkim_resolver_set *set,
				     const struct dkim_resolver_config *dns,
				     struct event *event)
{
	const struct dkim_resolver_entry *entry;
	struct dkim_resolver_entry new_entry;
	struct dkim_error error;
	const char *key = dkim_dns_config_key(dns);

	array_foreach(&set->entries, entry) {
		if (strcmp(entry->dns_key, key) == 0)
			return entry->resolver;
	}
	if (dkim_resolver_new(dns, &new_entry.resolver, &error) < 0) {
		e_error(event, "Cannot create the DNS resolver "
			"(signatures get temperror): %s", error.text);
		return resolver_unavailable(set);
	}
	new_entry.dns_key = i_strdup(key);
	array_push_back(&set->entries, &new_entry);
	e_debug(event, "Created a DNS resolver (%s)",
		dns->table != NULL ? "table" :
		dns->forward != NULL ? "forwarding" : "system resolver");
	return new_entry.resolver;
}

/*
 * Verification
 */

/* Feeds the message into the verifier.  Returns -1 (logged) if it could not
   be read completely: the verifier then has no meaningful result. */
static int
feed_mail(dkim_verifier *verifier, struct mail *mail, struct event *event)
{
	struct istream *mail_input, *input;
	const unsigned char *data;
	size_t size;
	int ret;

	if (mail_get_stream_because(mail, NULL, NULL, "DKIM verification",
				    &mail_input) < 0) {
		e_error(event, "Cannot read the message: %s",
			mailbox_get_last_internal_error(mail->box, NULL));
		return -1;
	}
	/* The stream belongs to the mail; read through a view of our own so
	   its offset stays where others expect it. */
	input = i_stream_create_limit(mail_input, UOFF_T_MAX);
	while ((ret = i_stream_read_more(input, &data, &size)) > 0) {
		dkim_verifier_feed(verifier, data, size);
		i_stream_skip(input, size);
	}
	if (input->stream_errno != 0) {
		e_error(event, "Cannot read the message: %s",
			i_stream_get_error(input));
		ret = -1;
	} else if (ret == 0) {
		/* mail streams are blocking; a partial read is a bug
		   elsewhere, but never a reason to lose the mail */
		e_error(event, "Cannot read the message: unexpected "
			"non-blocking stream");
		ret = -1;
	} else {
		ret = 0;
	}
	i_stream_unref(&input);
	return ret;
}

/* How Dovecot itself reads the From field: the first address
   message_address_parse() finds is what IMAP's ENVELOPE shows the user's
   mail client and what Sieve's address test sees.  Returns NULL when it is
   exactly one valid mailbox in `domain`, else what Dovecot sees instead. */
static const char *
dovecot_from_differs(struct mail *mail, const char *domain,
		     struct event *event)
{
	const struct message_address *addr;
	const char *const *values;
	int ret;

	if ((ret = mail_get_headers(mail, "From", &values)) < 0) {
		e_error(event, "Cannot read the From field: %s",
			mailbox_get_last_internal_error(mail->box, NULL));
		return "an unreadable From field";
	}
	if (ret == 0)
		return "no From field";
	if (values[1] != NULL)
		return "several From fields";
	/* A NUL ends the value here: dkimcore refuses any NUL, so a value
	   it accepted arrives whole. */
	addr = message_address_parse(pool_datastack_create(),
				     (const unsigned char *)values[0],
				     strlen(values[0]), 2, 0);
	if (addr == NULL || addr->domain == NULL)
		return "no address, or a group, first";
	if (addr->invalid_syntax)
		return "an invalid first address";
	if (addr->next != NULL)
		return "several addresses";
	if (strcasecmp(addr->domain, domain) != 0) {
		return t_strdup_printf("the domain %s",
				       str_sanitize(addr->domain,
						    DKIM_LOG_MAX_DOMAIN));
	}
	return NULL;
}

/* An author domain that Dovecot's own reading of the From field does not
   confirm is none: a signature must not align with a domain the user is
   not shown. */
static void
check_author(dkim_verifier *verifier, struct mail *mail, struct event *event)
{
	const char *domain = dkim_verifier_from_domain(verifier);

	if (domain == NULL)
		return;
	T_BEGIN {
		const char *dovecot = dovecot_from_differs(mail, domain, event);

		if (dovecot != NULL) {
			e_debug(event, "From: dkimcore finds the author domain "
				"%s, Dovecot reads %s: no author domain",
				domain, dovecot);
			dkim_verifier_dispute_author(verifier);
		}
	} T_END;
}

static const char *p_strdup_or_null(pool_t pool, const char *str)
{
	return str == NULL ? NULL : p_strdup(pool, str);
}

static struct dkim_summary *
summary_create(pool_t pool, const dkim_verifier *verifier)
{
	struct dkim_summary *summary = p_new(pool, struct dkim_summary, 1);
	struct dkim_signature_summary *sigs;
	size_t count = dkim_verifier_signature_count(verifier);

	summary->verdict = dkim_verifier_verdict(verifier);
	summary->from_domain =
		p_strdup_or_null(pool, dkim_verifier_from_domain(verifier));
	if (summary->from_domain == NULL) {
		summary->no_author_domain = dkim_author_status_text(
			dkim_verifier_author_status(verifier));
	}
	summary->skipped_signatures =
		dkim_verifier_skipped_signatures(verifier);
	if (count == 0)
		return summary;

	sigs = p_new(pool, struct dkim_signature_summary, count);
	for (size_t i = 0; i < count; i++) {
		const struct dkim_signature_result *sig =
			dkim_verifier_signature(verifier, i);

		sigs[i].result = sig->result;
		sigs[i].domain = p_strdup_or_null(pool, sig->domain);
		sigs[i].selector = p_strdup_or_null(pool, sig->selector);
		sigs[i].dnssec = sig->dnssec;
		sigs[i].aligned = dkim_domains_aligned(sig->domain,
						       summary->from_domain);
		if (sig->result != DKIM_RESULT_PASS) {
			sigs[i].reason = dkim_reason_name(sig->reason);
			sigs[i].explanation =
				p_strdup_or_null(pool, sig->explanation);
		}
	}
	summary->signatures = sigs;
	summary->signature_count = count;
	return summary;
}

static bool summary_aligned_pass(const struct dkim_summary *summary)
{
	for (unsigned int i = 0; i < summary->signature_count; i++) {
		if (summary->signatures[i].aligned &&
		    summary->signatures[i].result == DKIM_RESULT_PASS)
			return TRUE;
	}
	return FALSE;
}

static const char *log_text(const char *text, size_t max_len)
{
	return text == NULL ? "-" : str_sanitize(text, max_len);
}

/* One info line per message: the verdict and, per signature, its domain,
   selector, result and (unless pass) reason code.  Explanations go to
   debug lines, one per signature.  dkimcore sanitizes message-derived
   text already; str_sanitize() bounds it once more for the log. */
static void
summary_log(struct event *event, const struct dkim_summary *summary)
{
	string_t *domains = t_str_new(64), *results = t_str_new(64);
	string_t *dnssec = t_str_new(64), *line = t_str_new(256);

	str_printfa(line, "verdict=%s", dkim_result_name(summary->verdict));
	if (summary->unreadable)
		str_append(line, " (message unreadable)");
	str_printfa(line, " from=%s",
		    log_text(summary->from_domain, DKIM_LOG_MAX_DOMAIN));
	if (summary->no_author_domain != NULL)
		str_printfa(line, " (%s)", summary->no_author_domain);
	str_printfa(line, " signatures=%u", summary->signature_count);
	for (unsigned int i = 0; i < summary->signature_count; i++) {
		const struct dkim_signature_summary *sig =
			&summary->signatures[i];
		const char *domain = log_text(sig->domain, DKIM_LOG_MAX_DOMAIN);

		str_printfa(line, "%s%s/%s=%s", i == 0 ? " [" : ", ", domain,
			    log_text(sig->selector, DKIM_LOG_MAX_DOMAIN),
			    dkim_result_name(sig->result));
		if (sig->reason != NULL)
			str_printfa(line, " (%s)", sig->reason);
		if (i > 0) {
			str_append_c(domains, ',');
			str_append_c(results, ',');
			str_append_c(dnssec, ',');
		}
		str_append(domains, domain);
		str_append(results, dkim_result_name(sig->result));
		str_append(dnssec, dkim_dnssec_name(sig->dnssec));
		if (sig->explanation != NULL) {
			e_debug(event, "signature %u (d=%s s=%s): %s: %s", i + 1,
				domain, log_text(sig->selector,
						 DKIM_LOG_MAX_DOMAIN),
				dkim_result_name(sig->result),
				log_text(sig->explanation,
					 DKIM_LOG_MAX_EXPLANATION));
		}
	}
	if (summary->signature_count > 0)
		str_append_c(line, ']');
	if (summary->skipped_signatures > 0) {
		str_printfa(line, " skipped=%u (over dkim_max_signatures)",
			    summary->skipped_signatures);
	}
	str_printfa(line, " in %u ms", summary->duration_msecs);

	struct event_passthrough *e =
		event_create_passthrough(event)->
		set_name("dkim_verify_finished")->
		add_str("result", dkim_result_name(summary->verdict))->
		add_int("signatures", summary->signature_count)->
		add_str("aligned_pass",
			summary_aligned_pass(summary) ? "yes" : "no");
	if (summary->from_domain != NULL)
		e->add_str("from_domain", summary->from_domain);
	if (summary->signature_count > 0) {
		e->add_str("domains", str_c(domains));
		e->add_str("results", str_c(results));
		e->add_str("dnssec", str_c(dnssec));
	}
	e_info(e->event(), "%s", str_c(line));
}

struct dkim_summary *
dkim_verify_mail(struct mail *mail, const struct dkim_verify_settings *set,
		 dkim_resolver *resolver, pool_t pool,
		 struct event *parent_event, dkim_verifier **verifier_r)
{
	struct dkim_summary *summary;
	dkim_verifier *verifier;
	struct timeval started, finished;
	/* created now: the event's duration is the verification's */
	struct event *event = event_create(parent_event);

	i_gettimeofday(&started);
	verifier = dkim_verifier_new(&set->verify_config, resolver);
	if (feed_mail(verifier, mail, event) < 0) {
		dkim_verifier_free(&verifier);
		summary = p_new(pool, struct dkim_summary, 1);
		summary->verdict = DKIM_RESULT_TEMPERROR;
		summary->unreadable = TRUE;
	} else {
		dkim_verifier_finish(verifier);
		check_author(verifier, mail, event);
		summary = summary_create(pool, verifier);
	}
	i_gettimeofday(&finished);
	summary->duration_msecs =
		(unsigned int)timeval_diff_msecs(&finished, &started);

	T_BEGIN {
		summary_log(event, summary);
	} T_END;
	event_unref(&event);

	if (verifier_r != NULL)
		*verifier_r = verifier;
	else if (verifier != NULL)
		dkim_verifier_free(&verifier);
	return summary;
}

struct dkim_summary *dkim_summary_disabled(pool_t pool)
{
	struct dkim_summary *summary = p_new(pool, struct dkim_summary, 1);

	summary->verdict = DKIM_RESULT_NONE;
	return summary;
}

struct dkim_summary *
dkim_summary_dup(pool_t pool, const struct dkim_summary *summary)
{
	struct dkim_summary *copy = p_new(pool, struct dkim_summary, 1);
	struct dkim_signature_summary *sigs;

	*copy = *summary;
	copy->from_domain = p_strdup_or_null(pool, summary->from_domain);
	/* static, but in the other plugin's memory */
	copy->no_author_domain =
		p_strdup_or_null(pool, summary->no_author_domain);
	if (summary->signature_count == 0)
		return copy;

	sigs = p_new(pool, struct dkim_signature_summary,
		     summary->signature_count);
	for (unsigned int i = 0; i < summary->signature_count; i++) {
		const struct dkim_signature_summary *sig =
			&summary->signatures[i];

		sigs[i] = *sig;
		sigs[i].domain = p_strdup_or_null(pool, sig->domain);
		sigs[i].selector = p_strdup_or_null(pool, sig->selector);
		/* reason names are static, but in the other plugin's
		   memory: copy them too */
		sigs[i].reason = p_strdup_or_null(pool, sig->reason);
		sigs[i].explanation = p_strdup_or_null(pool, sig->explanation);
	}
	copy->signatures = sigs;
	return copy;
}

static bool
list_contains_icase(const char *const *list, const char *value)
{
	if (value == NULL)
		return FALSE;
	for (; *list != NULL; list++) {
		if (strcasecmp(*list, value) == 0)
			return TRUE;
	}
	return FALSE;
}

static bool
filter_selects(const struct dkim_signature_filter *filter,
	       const struct dkim_signature_summary *sig)
{
	return (filter->domains == NULL ||
		list_contains_icase(filter->domains, sig->domain)) &&
	       (filter->selectors == NULL ||
		list_contains_icase(filter->selectors, sig->selector)) &&
	       (!filter->aligned || sig->aligned);
}

enum dkim_result
dkim_summary_verdict(const struct dkim_summary *summary,
		     const struct dkim_signature_filter *filter)
{
	enum dkim_result verdict = DKIM_RESULT_NONE;

	if (filter == NULL)
		return summary->verdict;
	for (unsigned int i = 0; i < summary->signature_count; i++) {
		const struct dkim_signature_summary *sig =
			&summary->signatures[i];

		if (filter_selects(filter, sig))
			verdict = dkim_verdict_add(verdict, sig->result);
	}
	return verdict;
}
