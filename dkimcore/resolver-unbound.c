/* DNS through libunbound: the system's resolvers, or a forwarder given as
 * ADDR[@PORT], with optional DNSSEC validation against a trust anchor.
 *
 * Queries run asynchronously in libunbound's own thread (ub_ctx_async):
 * never fork() inside a mail server process.  The verifier starts the key
 * query as soon as it has parsed a signature and collects the answer after
 * hashing the body; waiting is a poll() on libunbound's descriptor.
 *
 * libunbound serves the special-use names of RFC 6761/8375 (test.,
 * invalid., localhost., home.arpa.) from built-in local zones: NXDOMAIN,
 * never asked upstream.  Against the system's resolvers that protection
 * stays (and the answer says why the name was not looked up); a forwarder
 * the administrator named is asked for them as dig would ask it, since a
 * lab or a home network serves exactly such zones. */
#include "dkim-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>
#include <unistd.h>

#define DNS_TYPE_TXT 16
#define DNS_CLASS_IN 1
#define DNS_RCODE_NOERROR 0

struct unbound_resolver {
	struct ub_ctx *ctx;
	bool validating;
	bool forwarding;
};

/* The special-use zones among libunbound's default local zones that a
 * DKIM key can sit under. */
static const char *const special_use_zones[] = {
	"test", "invalid", "localhost", "home.arpa",
};

/* The special-use zone qname is in, or NULL. */
static const char *
special_use_zone(const char *qname)
{
	size_t len = strlen(qname);

	if (len > 0 && qname[len - 1] == '.')
		len--;
	for (size_t i = 0; i < DKIM_N_ELEMENTS(special_use_zones); i++) {
		const char *zone = special_use_zones[i];
		size_t zone_len = strlen(zone);

		if (len >= zone_len &&
		    strncasecmp(qname + len - zone_len, zone, zone_len) == 0 &&
		    (len == zone_len || qname[len - zone_len - 1] == '.'))
			return zone;
	}
	return NULL;
}

/* TXT RDATA is a sequence of <length><bytes> character-strings; DKIM
 * concatenates them (RFC 6376 §3.6.2.2).  Returns false if malformed. */
static bool
add_txt_rdata(struct dkim_dns_answer *answer, const unsigned char *rdata,
	      size_t len)
{
	struct dkim_buf text = { 0 };
	unsigned strings = 0;
	size_t pos = 0;

	while (pos < len) {
		size_t string_len = rdata[pos++];
		if (string_len > len - pos) {
			dkim_buf_free(&text);
			return false;
		}
		dkim_buf_append(&text, rdata + pos, string_len);
		pos += string_len;
		strings++;
	}
	dkim_dns_answer_add_record(answer, text.data != NULL ? text.data : "",
				   text.len, strings);
	dkim_buf_free(&text);
	return true;
}

static void
fill_answer(struct unbound_resolver *ub, struct dkim_dns_answer *answer,
	    const struct ub_result *result)
{
	answer->dnssec = !ub->validating ? DKIM_DNSSEC_OFF :
		result->secure ? DKIM_DNSSEC_SECURE :
		result->bogus ? DKIM_DNSSEC_BOGUS : DKIM_DNSSEC_INSECURE;

	if (result->bogus) {
		answer->status = DKIM_DNS_ERROR;
		answer->detail = "DNSSEC validation failed";
		return;
	}
	if (result->havedata) {
		answer->status = DKIM_DNS_FOUND;
		for (size_t i = 0; result->data[i] != NULL; i++) {
			if (!add_txt_rdata(answer,
					   (const unsigned char *)result->data[i],
					   (size_t)result->len[i])) {
				dkim_dns_answer_clear(answer);
				answer->status = DKIM_DNS_ERROR;
				answer->detail = "malformed TXT record";
				return;
			}
		}
	} else if (result->nxdomain || result->rcode == DNS_RCODE_NOERROR) {
		answer->status = DKIM_DNS_NOT_FOUND;
	} else {
		answer->status = DKIM_DNS_ERROR;
		answer->detail = "DNS server failure";
		return;
	}
	answer->has_ttl = true;
	answer->ttl = result->ttl > 0 ? (unsigned)result->ttl : 0;
}

static void
resolve_callback(void *context, int err, struct ub_result *result)
{
	struct dkim_dns_query *query = context;
	struct unbound_resolver *ub = dkim_resolver_context(query->resolver);
	struct dkim_dns_answer *answer = &query->answer;

	if (err != 0) {
		answer->status = DKIM_DNS_ERROR;
		answer->detail = ub_strerror(err);
	} else {
		fill_answer(ub, answer, result);
	}
	if (result != NULL)
		ub_resolve_free(result);
	dkim_dns_query_done(query);
}

static void
unbound_start(dkim_resolver *resolver, struct dkim_dns_query *query)
{
	struct unbound_resolver *ub = dkim_resolver_context(resolver);

	if (!ub->forwarding && special_use_zone(query->qname) != NULL) {
		query->answer.status = DKIM_DNS_NOT_FOUND;
		query->answer.detail = "not looked up: a special-use name "
			"(RFC 6761: test, invalid, localhost, home.arpa), "
			"which only a resolver named in the configuration "
			"is asked for";
		dkim_dns_query_done(query);
		return;
	}
	int ret = ub_resolve_async(ub->ctx, query->qname, DNS_TYPE_TXT,
				   DNS_CLASS_IN, query, resolve_callback,
				   &query->async_id);

	if (ret != 0) {
		query->answer.status = DKIM_DNS_ERROR;
		query->answer.detail = ub_strerror(ret);
		dkim_dns_query_done(query);
	}
}

static void
unbound_wait(dkim_resolver *resolver, unsigned msecs)
{
	struct unbound_resolver *ub = dkim_resolver_context(resolver);
	struct pollfd pfd = { .fd = ub_fd(ub->ctx), .events = POLLIN };

	if (poll(&pfd, 1, (int)msecs) > 0)
		(void)ub_process(ub->ctx);
}

static void
unbound_deinit(dkim_resolver *resolver)
{
	struct unbound_resolver *ub = dkim_resolver_context(resolver);

	/* Ends libunbound's thread; callbacks of queries still in flight
	 * never run, and the front end frees those queries next. */
	ub_ctx_delete(ub->ctx);
	free(ub);
}

static const struct dkim_resolver_backend unbound_backend = {
	.start = unbound_start,
	.wait = unbound_wait,
	.deinit = unbound_deinit,
};

/* "ADDR[@PORT]" with an IPv4 or IPv6 address, as unbound expects it. */
static bool
forwarder_is_valid(const char *forward)
{
	const char *at = strchr(forward, '@');
	size_t addr_len = at != NULL ? (size_t)(at - forward) : strlen(forward);
	char addr[INET6_ADDRSTRLEN];
	unsigned char buf[sizeof(struct in6_addr)];

	if (addr_len == 0 || addr_len >= sizeof(addr))
		return false;
	memcpy(addr, forward, addr_len);
	addr[addr_len] = '\0';
	if (inet_pton(AF_INET, addr, buf) != 1 &&
	    inet_pton(AF_INET6, addr, buf) != 1)
		return false;
	if (at == NULL)
		return true;
	char *end;
	long port = strtol(at + 1, &end, 10);
	return at[1] != '\0' && *end == '\0' && port > 0 && port < 65536;
}

static int
configure(struct ub_ctx *ctx, const struct dkim_resolver_config *config,
	  struct dkim_error *error)
{
	int ret;

	if ((ret = ub_ctx_async(ctx, 1)) != 0)
		goto failed;
	if (config->forward != NULL) {
		if (!forwarder_is_valid(config->forward)) {
			dkim_error_set(error, "invalid resolver address %s "
				       "(expected ADDR[@PORT])",
				       config->forward);
			return -1;
		}
		/* Local resolvers and test servers listen on loopback. */
		if ((ret = ub_ctx_set_option(ctx, "do-not-query-localhost:",
					     "no")) != 0 ||
		    (ret = ub_ctx_set_fwd(ctx, config->forward)) != 0)
			goto failed;
		/* Ask the forwarder for the special-use names too: a
		 * transparent local zone without local data resolves every
		 * name normally ("nodefault" does not remove the default zones
		 * of a libunbound context: 1.17 still answers NXDOMAIN).  No
		 * chain of trust can reach these names (the root proves they
		 * do not exist): under a trust anchor they are insecure, not
		 * bogus. */
		for (size_t i = 0; i < DKIM_N_ELEMENTS(special_use_zones); i++) {
			char option[32];
			const char *zone = special_use_zones[i];

			snprintf(option, sizeof(option), "%s. transparent", zone);
			if ((ret = ub_ctx_set_option(ctx, "local-zone:",
						     option)) != 0 ||
			    (ret = ub_ctx_set_option(ctx, "domain-insecure:",
						     zone)) != 0)
				goto failed;
		}
	} else if ((ret = ub_ctx_resolvconf(ctx, NULL)) != 0) {
		dkim_error_set(error, "cannot read the system resolver "
			       "configuration: %s", ub_strerror(ret));
		return -1;
	}
	if (config->trust_anchor != NULL) {
		/* libunbound reads the file only at the first query, and then
		 * fails every query: check it now, while it is a config error. */
		if (access(config->trust_anchor, R_OK) < 0) {
			dkim_error_set(error, "cannot read trust anchor %s: %s",
				       config->trust_anchor, strerror(errno));
			return -1;
		}
		if ((ret = ub_ctx_add_ta_file(ctx, config->trust_anchor)) != 0) {
			dkim_error_set(error, "cannot load trust anchor %s: %s",
				       config->trust_anchor, ub_strerror(ret));
			return -1;
		}
	} else if ((ret = ub_ctx_set_option(ctx, "module-config:",
					    "iterator")) != 0) {
		goto failed;
	}
	return 0;
failed:
	dkim_error_set(error, "cannot configure libunbound: %s",
		       ub_strerror(ret));
	return -1;
}

int
dkim_resolver_unbound_new(const struct dkim_resolver_config *config,
			  dkim_resolver **resolver_r, struct dkim_error *error)
{
	struct ub_ctx *ctx = ub_ctx_create();

	if (ctx == NULL) {
		dkim_error_set(error, "cannot create a libunbound context");
		return -1;
	}
	if (configure(ctx, config, error) < 0) {
		ub_ctx_delete(ctx);
		return -1;
	}
	struct unbound_resolver *ub = dkim_calloc(1, sizeof(*ub));
	ub->ctx = ctx;
	ub->validating = config->trust_anchor != NULL;
	ub->forwarding = config->forward != NULL;
	*resolver_r = dkim_resolver_alloc(&unbound_backend, ub);
	return 0;
}
