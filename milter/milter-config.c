/* opendkim.conf, read as dkim-milter's configuration: see milter-config.h
 * and dkim-milter(8). */
#include "milter-config.h"
#include "dkim-util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

/* opendkim.conf(5): "Nesting is allowed to a maximum of five levels." */
#define MAX_INCLUDE_DEPTH 5
/* A line longer than this is no configuration line. */
#define MAX_LINE_LENGTH 8192

enum keyword_kind {
	KW_USED,		/* implemented */
	KW_IGNORED,		/* accepted with a warning: changes nothing
				   that is signed or judged */
	KW_REFUSED,		/* would change signing or judging: refused */
	KW_FIXED,		/* accepted only with the value we implement */
};

struct parse;
struct keyword;
/* Applies a value; false with parse->error set if it is invalid. */
typedef bool keyword_handler(struct parse *parse, const struct keyword *kw,
			     const char *value);

struct keyword {
	const char *name;
	enum keyword_kind kind;
	keyword_handler *handle;	/* KW_USED */
	size_t offset;			/* into struct milter_config */
	/* KW_IGNORED: what it did in OpenDKIM; KW_REFUSED: why it is
	 * refused; KW_FIXED: why other values are refused */
	const char *text;
	/* KW_FIXED: the accepted values, '|'-separated; a boolean's is
	 * "yes" or "no" */
	const char *accepted;
	bool boolean;
};

/* Where a keyword's value came from. */
struct setting {
	char *value;		/* NULL: not set */
	const char *source;
	unsigned line;
};

struct milter_config_state {
	struct setting *settings;	/* one per keyword */
	char **sources;			/* file names, kept for messages */
	size_t source_count;
	const char *main_source;
};

struct parse {
	struct milter_config *config;
	struct milter_problems *problems;
	const char *source;
	unsigned line;
	bool allow_include;
	unsigned depth;
	char error[512];
};

static const char *const action_names[] = {
	[MILTER_ACTION_ACCEPT] = "accept",
	[MILTER_ACTION_REJECT] = "reject",
	[MILTER_ACTION_TEMPFAIL] = "tempfail",
	[MILTER_ACTION_QUARANTINE] = "quarantine",
};

const char *
milter_action_name(enum milter_action action)
{
	return action_names[action];
}

/* ---- problems ---- */

void
milter_problems_add(struct milter_problems *problems, bool error,
		    const char *fmt, ...)
{
	char text[1024];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	/* One printable line each, whatever bytes the file had. */
	for (char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	}
	problems->lines = dkim_realloc(problems->lines,
		(problems->count + 1) * sizeof(*problems->lines));
	problems->lines[problems->count++] =
		dkim_strdup_printf("%s: %s", error ? "error" : "warning", text);
	if (error)
		problems->errors++;
}

void
milter_problems_free(struct milter_problems *problems)
{
	for (size_t i = 0; i < problems->count; i++)
		free(problems->lines[i]);
	free(problems->lines);
	memset(problems, 0, sizeof(*problems));
}

/* ---- value parsers ---- */

static bool DKIM_ATTR_FORMAT(2, 3)
fail(struct parse *parse, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(parse->error, sizeof(parse->error), fmt, args);
	va_end(args);
	return false;
}

/* opendkim.conf(5): only the first byte counts. */
static bool
parse_bool(const char *value, bool *result_r)
{
	switch (value[0]) {
	case 'T': case 't': case 'Y': case 'y': case '1':
		*result_r = true;
		return true;
	case 'F': case 'f': case 'N': case 'n': case '0':
		*result_r = false;
		return true;
	}
	return false;
}

static bool
parse_uint(const char *value, int base, unsigned long max,
	   unsigned long *result_r)
{
	char *end;

	if (!isdigit((unsigned char)value[0]))
		return false;
	errno = 0;
	unsigned long number = strtoul(value, &end, base);
	if (errno != 0 || *end != '\0' || number > max)
		return false;
	*result_r = number;
	return true;
}

#define FIELD(parse, kw, type) \
	((type *)(void *)((char *)(parse)->config + (kw)->offset))

static bool
handle_bool(struct parse *parse, const struct keyword *kw, const char *value)
{
	if (!parse_bool(value, FIELD(parse, kw, bool)))
		return fail(parse, "'%s' is not a boolean (yes or no)", value);
	return true;
}

static bool
handle_string(struct parse *parse, const struct keyword *kw,
	      const char *value)
{
	char **field = FIELD(parse, kw, char *);

	free(*field);
	*field = dkim_strdup(value);
	return true;
}

/* A data set: its type is checked now, the data read by
 * milter_config_load(). */
static bool
handle_dataset(struct parse *parse, const struct keyword *kw,
	       const char *value)
{
	enum milter_dataset_kind kind;
	struct dkim_error error;
	const char *path;

	(void)kw;
	if (milter_dataset_spec(value, &kind, &path, &error) < 0)
		return fail(parse, "%s", error.text);
	return true;
}

/* KeyTable and SigningTable: as the keytable library reads them. */
static bool
handle_table(struct parse *parse, const struct keyword *kw, const char *value)
{
	enum dkim_table_kind kind;
	struct dkim_error error;
	const char *path;

	if (dkim_table_spec_parse(value, &kind, &path, &error) < 0)
		return fail(parse, "%s", error.text);
	/* A KeyTable is looked up by key name: "refile:", which guides
	 * write too, reads the same (a name is its own pattern). */
	if (strcmp(kw->name, "SigningTable") == 0)
		parse->config->signingtable_kind = kind;
	return handle_string(parse, kw, path);
}

static bool
handle_mode(struct parse *parse, const struct keyword *kw, const char *value)
{
	bool sign = false, verify = false;

	(void)kw;
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == 's')
			sign = true;
		else if (*p == 'v')
			verify = true;
		else
			return fail(parse, "'%s': the modes are s (sign) and "
				    "v (verify)", value);
	}
	parse->config->sign = sign;
	parse->config->verify = verify;
	return true;
}

static bool
handle_canonicalization(struct parse *parse, const struct keyword *kw,
			const char *value)
{
	(void)kw;
	if (!dkim_canon_parse(value, &parse->config->header_canon,
			      &parse->config->body_canon))
		return fail(parse, "'%s': expected relaxed or simple, or two "
			    "of them as header/body", value);
	return true;
}

static bool
handle_umask(struct parse *parse, const struct keyword *kw, const char *value)
{
	unsigned long mask;

	(void)kw;
	if (!parse_uint(value, 8, 0777, &mask))
		return fail(parse, "'%s' is not an octal file mode mask", value);
	parse->config->umask = (int)mask;
	return true;
}

static bool
handle_positive(struct parse *parse, const struct keyword *kw,
		const char *value)
{
	unsigned long number;

	if (!parse_uint(value, 10, 1000000000, &number))
		return fail(parse, "'%s' is not a number", value);
	*FIELD(parse, kw, unsigned) = (unsigned)number;
	return true;
}

static bool
handle_minimum_key_bits(struct parse *parse, const struct keyword *kw,
			const char *value)
{
	if (!handle_positive(parse, kw, value))
		return false;
	if (parse->config->verify_config.min_rsa_bits < DKIM_RSA_MIN_BITS) {
		milter_problems_add(parse->problems, false, "%s line %u: %s: "
			"keys under %u bits never pass (RFC 8301); %s counts "
			"as %u", parse->source, parse->line, kw->name,
			DKIM_RSA_MIN_BITS, value, DKIM_RSA_MIN_BITS);
	}
	return true;
}

static bool
handle_maximum_signatures(struct parse *parse, const struct keyword *kw,
			  const char *value)
{
	if (!handle_positive(parse, kw, value))
		return false;
	if (parse->config->verify_config.max_signatures >
	    DKIM_MAX_SIGNATURES_LIMIT) {
		milter_problems_add(parse->problems, false, "%s line %u: %s: "
			"at most %u signatures are evaluated; %s counts as %u",
			parse->source, parse->line, kw->name,
			DKIM_MAX_SIGNATURES_LIMIT, value,
			DKIM_MAX_SIGNATURES_LIMIT);
	}
	return true;
}

/* DNSTimeout is in seconds, the core's bound in milliseconds. */
static bool
handle_dns_timeout(struct parse *parse, const struct keyword *kw,
		   const char *value)
{
	unsigned long seconds;

	(void)kw;
	if (!parse_uint(value, 10, 3600, &seconds) || seconds == 0)
		return fail(parse, "'%s' is not a number of seconds (1-3600)",
			    value);
	parse->config->verify_config.dns_timeout_msecs = (unsigned)seconds * 1000;
	return true;
}

static bool
handle_max_headers(struct parse *parse, const struct keyword *kw,
		   const char *value)
{
	unsigned long bytes;

	(void)kw;
	if (!parse_uint(value, 10, 64UL * 1024 * 1024, &bytes) || bytes < 1024)
		return fail(parse, "'%s' is not a number of bytes (1024 to "
			    "64 MiB)", value);
	parse->config->verify_config.max_header_bytes = bytes;
	return true;
}

static bool
handle_signature_ttl(struct parse *parse, const struct keyword *kw,
		     const char *value)
{
	(void)kw;
	if (!parse_uint(value, 10, 10UL * 365 * 86400,
			&parse->config->signature_ttl))
		return fail(parse, "'%s' is not a number of seconds", value);
	return true;
}

static bool
handle_syslog_facility(struct parse *parse, const struct keyword *kw,
		       const char *value)
{
	static const struct { const char *name; int facility; } names[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON },
		{ "user", LOG_USER }, { "local0", LOG_LOCAL0 },
		{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
		{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
		{ "local7", LOG_LOCAL7 },
	};

	(void)kw;
	for (size_t i = 0; i < DKIM_N_ELEMENTS(names); i++) {
		if (strcasecmp(value, names[i].name) == 0) {
			parse->config->syslog_facility = names[i].facility;
			return true;
		}
	}
	return fail(parse, "'%s' is not a syslog facility (mail, daemon, "
		    "user, local0 ... local7)", value);
}

/* opendkim.conf(5): a comma-separated list of addresses.  The core's
 * resolver forwards to one server: the first is used. */
static bool
handle_nameservers(struct parse *parse, const struct keyword *kw,
		   const char *value)
{
	size_t len = strcspn(value, ", \t");

	(void)kw;
	free(parse->config->nameserver);
	parse->config->nameserver = dkim_strndup(value, len);
	if (value[len + strspn(value + len, ", \t")] != '\0') {
		milter_problems_add(parse->problems, false, "%s line %u: %s: "
			"only the first server, %s, is asked (put a local "
			"validating resolver first)", parse->source,
			parse->line, kw->name, parse->config->nameserver);
	}
	return true;
}

/* RFC 8601 §2.2: a token; "HOSTNAME" is OpenDKIM's word for ours. */
static bool
handle_authserv_id(struct parse *parse, const struct keyword *kw,
		   const char *value)
{
	char host[256];

	if (strcmp(value, "HOSTNAME") == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			return fail(parse, "cannot get the host name: %s",
				    strerror(errno));
		host[sizeof(host) - 1] = '\0';
		value = host;
	}
	for (const char *p = value; *p != '\0'; p++) {
		if (*p <= ' ' || *p > '~' || strchr(";\"()\\", *p) != NULL)
			return fail(parse, "'%s' is not an authserv-id (a "
				    "host name)", value);
	}
	return handle_string(parse, kw, value);
}

/* OpenDKIM's action words and their one-letter forms. */
static bool
handle_on(struct parse *parse, const struct keyword *kw, const char *value)
{
	static const struct { const char *name; enum milter_action action; }
	actions[] = {
		{ "accept", MILTER_ACTION_ACCEPT }, { "a", MILTER_ACTION_ACCEPT },
		{ "reject", MILTER_ACTION_REJECT }, { "r", MILTER_ACTION_REJECT },
		{ "tempfail", MILTER_ACTION_TEMPFAIL },
		{ "t", MILTER_ACTION_TEMPFAIL },
		{ "quarantine", MILTER_ACTION_QUARANTINE },
		{ "q", MILTER_ACTION_QUARANTINE },
	};
	enum milter_action *action = FIELD(parse, kw, enum milter_action);
	bool local = action == &parse->config->on[MILTER_ON_INTERNAL_ERROR] ||
		action == &parse->config->on[MILTER_ON_SIGNATURE_ERROR];

	if (strcasecmp(value, "discard") == 0 || strcasecmp(value, "d") == 0)
		return fail(parse, "discard is not supported: it drops mail "
			    "without telling anyone; use reject or "
			    "quarantine");
	for (size_t i = 0; i < DKIM_N_ELEMENTS(actions); i++) {
		if (strcasecmp(value, actions[i].name) != 0)
			continue;
		if (local && actions[i].action != MILTER_ACTION_ACCEPT &&
		    actions[i].action != MILTER_ACTION_TEMPFAIL)
			return fail(parse, "a local failure must never lose "
				    "or bounce mail: accept (pass it on as "
				    "it is) or tempfail (the sender retries)");
		*action = actions[i].action;
		return true;
	}
	return fail(parse, "'%s': expected accept, reject, tempfail or "
		    "quarantine", value);
}

static bool handle_include(struct parse *parse, const struct keyword *kw,
			   const char *value);

#define USED(name, handler, field) \
	{ name, KW_USED, handler, offsetof(struct milter_config, field), \
	  NULL, NULL, false }
#define CUSTOM(name, handler) { name, KW_USED, handler, 0, NULL, NULL, false }
#define DATASET(name) CUSTOM(name, handle_dataset)
#define ON(name, which) \
	{ name, KW_USED, handle_on, \
	  offsetof(struct milter_config, on) + \
	  (which) * sizeof(enum milter_action), NULL, NULL, false }
#define IGNORED(name, text) { name, KW_IGNORED, NULL, 0, text, NULL, false }
#define REFUSED(name, text) { name, KW_REFUSED, NULL, 0, text, NULL, false }
#define FIXED(name, accepted, text) \
	{ name, KW_FIXED, NULL, 0, text, accepted, false }
#define FIXED_BOOL(name, accepted, text) \
	{ name, KW_FIXED, NULL, 0, text, accepted, true }

#define NOT_IMPLEMENTED "not implemented by dkim-milter"
#define ADSP "ADSP (RFC 5617) was moved to Historic in 2013; DMARC " \
	"replaced it"
#define BODY_LENGTH "l= is never used: it lets anyone append text under " \
	"the signature"
#define POLICY_SCRIPT "Lua policy scripts are not supported"
#define REPORTS "failure reports are not sent"
#define STATISTICS "no statistics are kept"
#define LDAP "ldap: data sets are not supported"
#define VBR "VBR (RFC 5518) is not supported"

/* Every keyword of opendkim.conf(5) (OpenDKIM 2.11, and those 2.10
 * removed), then dkim-milter's own.  dkim-milter(8) lists them the same
 * way. */
static const struct keyword keywords[] = {
	IGNORED("AddAllSignatureResults", "every signature's result is "
		"always in Authentication-Results"),
	FIXED("ADSPAction", "continue", ADSP),
	FIXED_BOOL("ADSPDiscard", "no", ADSP),
	FIXED_BOOL("ADSPNoSuchDomain", "no", ADSP),
	FIXED_BOOL("AllowSHA1Only", "no", "rsa-sha1 signatures never pass "
		   "(RFC 8301)"),
	IGNORED("AlwaysAddARHeader", "an Authentication-Results field is "
		"always added when mail is verified"),
	REFUSED("ATPSDomains", "ATPS (RFC 6541, experimental) is not "
		"supported"),
	REFUSED("ATPSHashAlgorithm", "ATPS (RFC 6541, experimental) is not "
		"supported"),
	USED("AuthservID", handle_authserv_id, authserv_id),
	IGNORED("AuthservIDWithJobID", "the authserv-id is used alone"),
	IGNORED("AutoRestart", "let the service manager restart it "
		"(dkim-milter.service has Restart=on-failure)"),
	IGNORED("AutoRestartCount", "let the service manager restart it"),
	IGNORED("AutoRestartRate", "let the service manager restart it"),
	USED("Background", handle_bool, background),
	USED("BaseDirectory", handle_string, base_directory),
	REFUSED("BodyLengthDB", BODY_LENGTH),
	FIXED("BogusKey", "fail", "a key that fails DNSSEC validation "
	      "always fails the signature"),
	REFUSED("BogusPolicy", ADSP),
	CUSTOM("Canonicalization", handle_canonicalization),
	IGNORED("CaptureUnknownErrors", "there is no capture"),
	REFUSED("ChangeRootDirectory", NOT_IMPLEMENTED " (use the "
		"sandboxing of dkim-milter.service)"),
	USED("ClockDrift", handle_positive, verify_config.clock_drift),
	FIXED_BOOL("Diagnostics", "no", "z= (copied header fields) is never "
		   "added"),
	IGNORED("DiagnosticDirectory", "no diagnostic files are written"),
	FIXED_BOOL("DisableADSP", "yes", ADSP),
	IGNORED("DisableCryptoInit", "OpenSSL needs no set-up"),
	IGNORED("DNSConnect", "libunbound chooses the transport"),
	CUSTOM("DNSTimeout", handle_dns_timeout),
	DATASET("Domain"),
	FIXED_BOOL("DomainKeysCompat", "no", "DomainKeys (RFC 4870) is "
		   "Historic"),
	REFUSED("DontSignMailTo", NOT_IMPLEMENTED),
	IGNORED("EnableCoredumps", "set LimitCORE= in the service instead"),
	REFUSED("ExemptDomains", NOT_IMPLEMENTED),
	DATASET("ExternalIgnoreList"),
	REFUSED("FinalPolicyScript", POLICY_SCRIPT),
	FIXED_BOOL("FixCRLF", "no", "line ends are taken as they come "
		   "(CRLF or LF)"),
	REFUSED("IdentityHeader", NOT_IMPLEMENTED),
	REFUSED("IdentityHeaderRemove", NOT_IMPLEMENTED),
	IGNORED("IgnoreMalformedMail", "malformed mail is always passed "
		"on, with its Authentication-Results"),
	CUSTOM("Include", handle_include),
	DATASET("InternalHosts"),
	FIXED_BOOL("KeepAuthResults", "no", "Authentication-Results fields "
		   "that claim our authserv-id are forged and always removed "
		   "(RFC 8601 section 5)"),
	IGNORED("KeepTemporaryFiles", "no temporary files are written"),
	USED("KeyFile", handle_string, keyfile),
	USED("KeyTable", handle_table, keytable),
	IGNORED("LDAPAuthMechanism", LDAP),
	IGNORED("LDAPAuthName", LDAP),
	IGNORED("LDAPAuthRealm", LDAP),
	IGNORED("LDAPAuthUser", LDAP),
	IGNORED("LDAPBindPassword", LDAP),
	IGNORED("LDAPBindUser", LDAP),
	IGNORED("LDAPDisableCache", LDAP),
	IGNORED("LDAPKeepaliveIdle", LDAP),
	IGNORED("LDAPKeepaliveInterval", LDAP),
	IGNORED("LDAPKeepaliveProbes", LDAP),
	IGNORED("LDAPSoftStart", LDAP),
	IGNORED("LDAPTimeout", LDAP),
	IGNORED("LDAPUseTLS", LDAP),
	REFUSED("LocalADSP", ADSP),
	USED("LogResults", handle_bool, log_results),
	USED("LogWhy", handle_bool, log_why),
	REFUSED("MacroList", NOT_IMPLEMENTED " (who is signed follows "
		"{auth_authen}, InternalHosts and ResignMailTo)"),
	CUSTOM("MaximumHeaders", handle_max_headers),
	USED("MaximumSignaturesToVerify", handle_maximum_signatures,
	     verify_config.max_signatures),
	REFUSED("MaximumSignedBytes", BODY_LENGTH),
	IGNORED("MilterDebug", "libmilter's debugging is not exposed"),
	REFUSED("Minimum", "a signature that leaves part of the body "
		"unsigned (l=) never passes"),
	USED("MinimumKeyBits", handle_minimum_key_bits, verify_config.min_rsa_bits),
	CUSTOM("Mode", handle_mode),
	REFUSED("MTA", NOT_IMPLEMENTED " (who is signed follows "
		"{auth_authen}, InternalHosts and ResignMailTo)"),
	IGNORED("MTACommand", REPORTS),
	USED("MultipleSignatures", handle_bool, multiple_signatures),
	REFUSED("MustBeSigned", NOT_IMPLEMENTED),
	CUSTOM("Nameservers", handle_nameservers),
	REFUSED("NoDiscardableMailTo", ADSP),
	IGNORED("NoHeaderB", "header.b is always in Authentication-Results"),
	REFUSED("OmitHeaders", NOT_IMPLEMENTED " (list what to sign with "
		"SignHeaders)"),
	ON("On-BadSignature", MILTER_ON_BAD_SIGNATURE),
	/* handled before the others: see apply_on_default() */
	CUSTOM("On-Default", NULL),
	ON("On-DNSError", MILTER_ON_DNS_ERROR),
	ON("On-InternalError", MILTER_ON_INTERNAL_ERROR),
	ON("On-KeyNotFound", MILTER_ON_KEY_NOT_FOUND),
	ON("On-NoSignature", MILTER_ON_NO_SIGNATURE),
	FIXED("On-PolicyError", "accept|a", ADSP),
	REFUSED("On-Security", NOT_IMPLEMENTED),
	ON("On-SignatureError", MILTER_ON_SIGNATURE_ERROR),
	ON("On-UnauthorizedFrom", MILTER_ON_UNAUTHORIZED_FROM),
	DATASET("OversignHeaders"),
	DATASET("PeerList"),
	USED("PidFile", handle_string, pidfile),
	REFUSED("POPDBFile", NOT_IMPLEMENTED " (POP before SMTP)"),
	REFUSED("Quarantine", NOT_IMPLEMENTED " (use On-BadSignature "
		"quarantine)"),
	IGNORED("QueryCache", "key records are always cached for their TTL"),
	REFUSED("RedirectFailuresTo", NOT_IMPLEMENTED),
	REFUSED("RemoveARAll", NOT_IMPLEMENTED " (forged fields with our "
		"authserv-id are removed)"),
	REFUSED("RemoveARFrom", NOT_IMPLEMENTED " (forged fields with our "
		"authserv-id are removed)"),
	USED("RemoveOldSignatures", handle_bool, remove_old_signatures),
	REFUSED("ReplaceHeaders", NOT_IMPLEMENTED),
	REFUSED("ReplaceRules", NOT_IMPLEMENTED),
	IGNORED("ReportAddress", REPORTS),
	IGNORED("ReportBccAddress", REPORTS),
	FIXED_BOOL("RequestReports", "no", "r=y is never added: failure "
		   "reports are not sent"),
	REFUSED("RequiredHeaders", NOT_IMPLEMENTED),
	USED("RequireSafeKeys", handle_bool, require_safe_keys),
	FIXED_BOOL("ResignAll", "no", "it re-signs anyone's mail; "
		   "ResignMailTo signs forwarded mail without that"),
	DATASET("ResignMailTo"),
	REFUSED("ResolverConfiguration", NOT_IMPLEMENTED " (use "
		"Nameservers and TrustAnchorFile)"),
	IGNORED("ResolverTracing", "libunbound's tracing is not exposed"),
	REFUSED("ScreenPolicyScript", POLICY_SCRIPT),
	REFUSED("SelectCanonicalizationHeader", NOT_IMPLEMENTED),
	USED("Selector", handle_string, selector),
	FIXED_BOOL("SendADSPReports", "no", ADSP),
	REFUSED("SenderHeaders", NOT_IMPLEMENTED " (the signer follows the "
		"From field)"),
	REFUSED("SenderMacro", NOT_IMPLEMENTED),
	IGNORED("SendReports", REPORTS),
	REFUSED("SetupPolicyScript", POLICY_SCRIPT),
	FIXED("SignatureAlgorithm", "rsa-sha256|ed25519-sha256",
	      "the algorithm follows each key's type (RSA: rsa-sha256, "
	      "Ed25519: ed25519-sha256); rsa-sha1 is never used (RFC 8301)"),
	CUSTOM("SignatureTTL", handle_signature_ttl),
	DATASET("SignFromTable"),
	DATASET("SignHeaders"),
	USED("SigningTable", handle_table, signingtable),
	IGNORED("SMTPURI", REPORTS),
	USED("Socket", handle_string, socket),
	IGNORED("SoftStart", LDAP),
	IGNORED("SoftwareHeader", "no DKIM-Filter field is added"),
	IGNORED("Statistics", STATISTICS),
	IGNORED("StatisticsName", STATISTICS),
	REFUSED("StatisticsPolicyScript", POLICY_SCRIPT),
	IGNORED("StatisticsPrefix", STATISTICS),
	REFUSED("StrictHeaders", NOT_IMPLEMENTED),
	IGNORED("StrictTestMode", "there is no test mode"),
	USED("SubDomains", handle_bool, subdomains),
	USED("Syslog", handle_bool, syslog),
	CUSTOM("SyslogFacility", handle_syslog_facility),
	USED("SyslogName", handle_string, syslog_name),
	USED("SyslogSuccess", handle_bool, syslog_success),
	IGNORED("TemporaryDirectory", "no temporary files are written"),
	REFUSED("TestDNSData", "test mode only"),
	REFUSED("TestPublicKeys", "test mode only"),
	USED("TrustAnchorFile", handle_string, trust_anchor_file),
	REFUSED("TrustSignaturesFrom", NOT_IMPLEMENTED),
	CUSTOM("UMask", handle_umask),
	REFUSED("UnprotectedPolicy", ADSP),
	FIXED("UnprotectedKey", "none", "a key without DNSSEC is judged "
	      "like any other"),
	USED("UserID", handle_string, userid),
	REFUSED("VBR-Certifiers", VBR),
	REFUSED("VBR-PurgeFields", VBR),
	REFUSED("VBR-TrustedCertifiers", VBR),
	REFUSED("VBR-TrustedCertifiersOnly", VBR),
	REFUSED("VBR-Type", VBR),
	FIXED_BOOL("WeakSyntaxChecks", "no", "signatures are always checked "
		   "strictly"),
	IGNORED("X-Header", "no DKIM-Filter field is added"),
};

#define KEYWORD_COUNT DKIM_N_ELEMENTS(keywords)

static const struct keyword *
keyword_find(const char *name, size_t len)
{
	for (size_t i = 0; i < KEYWORD_COUNT; i++) {
		if (strlen(keywords[i].name) == len &&
		    strncasecmp(keywords[i].name, name, len) == 0)
			return &keywords[i];
	}
	return NULL;
}

static size_t
keyword_index(const struct keyword *kw)
{
	return (size_t)(kw - keywords);
}

static const struct setting *
setting_of(const struct milter_config *config, const char *name)
{
	const struct keyword *kw = keyword_find(name, strlen(name));

	return kw == NULL ? NULL : &config->state->settings[keyword_index(kw)];
}

/* ---- the file ---- */

static const char *
intern_source(struct milter_config_state *state, const char *source)
{
	for (size_t i = 0; i < state->source_count; i++) {
		if (strcmp(state->sources[i], source) == 0)
			return state->sources[i];
	}
	state->sources = dkim_realloc(state->sources,
		(state->source_count + 1) * sizeof(*state->sources));
	return state->sources[state->source_count++] = dkim_strdup(source);
}

static bool
fixed_value_accepted(const struct keyword *kw, const char *value)
{
	if (kw->boolean) {
		bool given, accepted;
		return parse_bool(value, &given) &&
			parse_bool(kw->accepted, &accepted) &&
			given == accepted;
	}
	for (const char *p = kw->accepted; *p != '\0';) {
		size_t len = strcspn(p, "|");
		if (strlen(value) == len && strncasecmp(p, value, len) == 0)
			return true;
		p += len;
		p += *p == '|';
	}
	return false;
}

static void DKIM_ATTR_FORMAT(4, 5)
report(struct parse *parse, bool error, const struct keyword *kw,
       const char *fmt, ...)
{
	char text[768];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	milter_problems_add(parse->problems, error, "%s line %u: %s: %s",
			    parse->source, parse->line, kw->name, text);
}

static void
apply(struct parse *parse, const struct keyword *kw, const char *value)
{
	struct setting *setting =
		&parse->config->state->settings[keyword_index(kw)];

	switch (kw->kind) {
	case KW_IGNORED:
		report(parse, false, kw, "accepted and ignored: %s", kw->text);
		return;
	case KW_REFUSED:
		report(parse, true, kw, "not supported: %s", kw->text);
		return;
	case KW_FIXED:
		if (!fixed_value_accepted(kw, value))
			report(parse, true, kw, "'%s' is not supported: %s",
			       value, kw->text);
		return;
	case KW_USED:
		break;
	}
	if (setting->value != NULL && kw->handle != handle_include) {
		report(parse, false, kw, "set again (first at %s line %u); "
		       "this value counts", setting->source, setting->line);
	}
	if (kw->handle != NULL && !kw->handle(parse, kw, value)) {
		report(parse, true, kw, "%s", parse->error);
		return;
	}
	free(setting->value);
	setting->value = dkim_strdup(value);
	setting->source = parse->source;
	setting->line = parse->line;
}

static void
parse_line(struct parse *parse, char *line)
{
	char *comment = strchr(line, '#');

	if (comment != NULL)
		*comment = '\0';
	while (isspace((unsigned char)*line))
		line++;
	size_t len = strlen(line);
	while (len > 0 && isspace((unsigned char)line[len - 1]))
		line[--len] = '\0';
	if (len == 0)
		return;

	size_t name_len = strcspn(line, " \t");
	char *value = line + name_len;
	while (dkim_is_wsp((unsigned char)*value))
		value++;
	const struct keyword *kw = keyword_find(line, name_len);
	if (kw == NULL) {
		milter_problems_add(parse->problems, true, "%s line %u: %.*s: "
				    "unknown keyword", parse->source,
				    parse->line, (int)(name_len < 80 ? name_len : 80),
				    line);
		return;
	}
	if (*value == '\0') {
		report(parse, true, kw, "no value");
		return;
	}
	apply(parse, kw, value);
}

static int
parse_text(struct parse *parse, const char *text, size_t size)
{
	unsigned errors = parse->problems->errors;
	size_t pos = 0;

	parse->line = 0;
	while (pos < size) {
		const char *end = memchr(text + pos, '\n', size - pos);
		size_t len = end != NULL ? (size_t)(end - text) - pos :
			size - pos;

		parse->line++;
		if (memchr(text + pos, '\0', len) != NULL) {
			milter_problems_add(parse->problems, true, "%s line "
				"%u: a NUL byte: not a configuration file",
				parse->source, parse->line);
			return -1;
		}
		if (len > MAX_LINE_LENGTH) {
			milter_problems_add(parse->problems, true, "%s line "
				"%u: longer than %d bytes", parse->source,
				parse->line, MAX_LINE_LENGTH);
		} else {
			char *line = dkim_strndup(text + pos, len);
			parse_line(parse, line);
			free(line);
		}
		pos += len + 1;
	}
	return parse->problems->errors > errors ? -1 : 0;
}

static bool
handle_include(struct parse *parse, const struct keyword *kw,
	       const char *value)
{
	struct dkim_error error;
	char *text;
	size_t size;

	(void)kw;
	if (!parse->allow_include)
		return fail(parse, "not allowed here");
	if (parse->depth >= MAX_INCLUDE_DEPTH)
		return fail(parse, "nested more than %d levels deep",
			    MAX_INCLUDE_DEPTH);
	if (dkim_table_read_file(value, &text, &size, &error) < 0)
		return fail(parse, "%s", error.text);

	struct parse included = *parse;
	included.source = intern_source(parse->config->state, value);
	included.depth++;
	(void)parse_text(&included, text, size);
	free(text);
	return true;
}

/* ---- life cycle ---- */

void
milter_config_init(struct milter_config *config)
{
	memset(config, 0, sizeof(*config));
	config->sign = config->verify = true;
	config->umask = -1;
	config->background = true;
	config->syslog = true;
	config->require_safe_keys = true;
	config->syslog_facility = LOG_MAIL;
	config->header_canon = config->body_canon = DKIM_CANON_RELAXED;
	config->signingtable_kind = DKIM_TABLE_FILE;
	dkim_verify_config_init(&config->verify_config);
	for (size_t i = 0; i < MILTER_ON_COUNT; i++)
		config->on[i] = MILTER_ACTION_ACCEPT;
	config->on[MILTER_ON_INTERNAL_ERROR] = MILTER_ACTION_TEMPFAIL;
	config->on[MILTER_ON_SIGNATURE_ERROR] = MILTER_ACTION_TEMPFAIL;
	config->state = dkim_calloc(1, sizeof(*config->state));
	config->state->settings = dkim_calloc(KEYWORD_COUNT,
					      sizeof(struct setting));
}

void
milter_config_free(struct milter_config *config)
{
	struct milter_config_state *state = config->state;

	free(config->socket);
	free(config->pidfile);
	free(config->userid);
	free(config->base_directory);
	free(config->syslog_name);
	milter_dataset_free(&config->domains);
	free(config->selector);
	free(config->keyfile);
	free(config->keytable);
	free(config->signingtable);
	milter_strings_free(&config->sign_headers);
	milter_strings_free(&config->oversign_headers);
	milter_hosts_free(&config->internal_hosts);
	milter_hosts_free(&config->external_ignore);
	milter_hosts_free(&config->peers);
	milter_dataset_free(&config->resign_mail_to);
	milter_dataset_free(&config->sign_from);
	free(config->authserv_id);
	free(config->trust_anchor_file);
	free(config->nameserver);
	if (state != NULL) {
		for (size_t i = 0; i < KEYWORD_COUNT; i++)
			free(state->settings[i].value);
		free(state->settings);
		for (size_t i = 0; i < state->source_count; i++)
			free(state->sources[i]);
		free(state->sources);
		free(state);
	}
	memset(config, 0, sizeof(*config));
}

/* On-Default "is processed before the other On- values so it can be used
 * as a blanket setting" (opendkim.conf(5)): it sets every case that has
 * no keyword of its own, the local failures only to what they may be. */
static void
apply_on_default(struct parse *parse)
{
	struct milter_config *config = parse->config;
	const struct setting *on_default = setting_of(config, "On-Default");
	static const char *const cases[MILTER_ON_COUNT] = {
		[MILTER_ON_BAD_SIGNATURE] = "On-BadSignature",
		[MILTER_ON_DNS_ERROR] = "On-DNSError",
		[MILTER_ON_KEY_NOT_FOUND] = "On-KeyNotFound",
		[MILTER_ON_NO_SIGNATURE] = "On-NoSignature",
		[MILTER_ON_INTERNAL_ERROR] = "On-InternalError",
		[MILTER_ON_SIGNATURE_ERROR] = "On-SignatureError",
		[MILTER_ON_UNAUTHORIZED_FROM] = "On-UnauthorizedFrom",
	};

	if (on_default->value == NULL)
		return;
	parse->source = on_default->source;
	parse->line = on_default->line;
	for (size_t i = 0; i < MILTER_ON_COUNT; i++) {
		const struct keyword *kw =
			keyword_find(cases[i], strlen(cases[i]));
		if (config->state->settings[keyword_index(kw)].value != NULL)
			continue;
		enum milter_action saved = config->on[i];
		if (!handle_on(parse, kw, on_default->value)) {
			config->on[i] = saved;
			if (i == MILTER_ON_INTERNAL_ERROR ||
			    i == MILTER_ON_SIGNATURE_ERROR)
				continue;	/* stays tempfail */
			report(parse, true, keyword_find("On-Default", 10),
			       "%s", parse->error);
			return;
		}
	}
}

int
milter_config_parse(struct milter_config *config, const char *text,
		    size_t size, const char *source, bool allow_include,
		    struct milter_problems *problems)
{
	struct parse parse = {
		.config = config, .problems = problems,
		.source = intern_source(config->state, source),
		.allow_include = allow_include,
	};
	unsigned errors = problems->errors;

	if (config->state->main_source == NULL)
		config->state->main_source = parse.source;
	(void)parse_text(&parse, text, size);
	apply_on_default(&parse);
	return problems->errors > errors ? -1 : 0;
}

int
milter_config_read(struct milter_config *config, const char *path,
		   struct milter_problems *problems)
{
	struct dkim_error error;
	char *text;
	size_t size;

	if (dkim_table_read_file(path, &text, &size, &error) < 0) {
		milter_problems_add(problems, true, "%s", error.text);
		return -1;
	}
	(void)milter_config_parse(config, text, size, path, true, problems);
	free(text);
	return 0;
}

int
milter_config_set(struct milter_config *config, const char *keyword,
		  const char *value, const char *source,
		  struct milter_problems *problems)
{
	struct parse parse = {
		.config = config, .problems = problems,
		.source = intern_source(config->state, source),
	};
	const struct keyword *kw = keyword_find(keyword, strlen(keyword));
	unsigned errors = problems->errors;

	apply(&parse, kw, value);
	return problems->errors > errors ? -1 : 0;
}

/* ---- loading and checking ---- */

void
milter_config_problem(const struct milter_config *config,
		      struct milter_problems *problems, bool error,
		      const char *keyword, const char *fmt, ...)
{
	const struct setting *setting = setting_of(config, keyword);
	char text[768];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	if (setting != NULL && setting->value != NULL)
		milter_problems_add(problems, error, "%s line %u: %s: %s",
				    setting->source, setting->line, keyword,
				    text);
	else
		milter_problems_add(problems, error, "%s: %s: %s",
				    config->state->main_source != NULL ?
				    config->state->main_source :
				    "configuration", keyword, text);
}

bool
milter_config_is_set(const struct milter_config *config, const char *keyword)
{
	const struct setting *setting = setting_of(config, keyword);

	return setting != NULL && setting->value != NULL;
}

static const char *
value_of(const struct milter_config *config, const char *keyword)
{
	return setting_of(config, keyword)->value;
}

static int
open_dataset(struct milter_config *config, const char *keyword,
	     struct milter_dataset **set_r, struct milter_problems *problems)
{
	const char *spec = value_of(config, keyword);
	struct dkim_error error;

	*set_r = NULL;
	if (spec == NULL)
		return 0;
	if (milter_dataset_open(spec, set_r, &error) < 0) {
		milter_config_problem(config, problems, true, keyword, "%s",
				      error.text);
		return -1;
	}
	return 0;
}

static void
open_hosts(struct milter_config *config, const char *keyword,
	   const char *default_list, struct milter_hosts **hosts_r,
	   struct milter_problems *problems)
{
	struct milter_dataset *set;
	struct dkim_error error;
	int ret;

	if (open_dataset(config, keyword, &set, problems) < 0)
		return;
	if (set != NULL)
		ret = milter_hosts_new(set, hosts_r, &error);
	else if (default_list != NULL)
		ret = milter_hosts_new_list(default_list, hosts_r, &error);
	else
		ret = 0;
	if (ret < 0)
		milter_config_problem(config, problems, true, keyword, "%s",
				      error.text);
	milter_dataset_free(&set);
}

/* Header field names: printable, no ':' or blanks (RFC 5322 §2.2). */
static bool
field_name_ok(const char *name)
{
	if (*name == '\0')
		return false;
	for (; *name != '\0'; name++) {
		if (*name <= ' ' || *name > '~' || *name == ':')
			return false;
	}
	return true;
}

/* SignHeaders and OversignHeaders: a data set of field names; From is
 * always oversigned, whatever the list says. */
static void
open_header_list(struct milter_config *config, const char *keyword,
		 bool with_from, char ***names_r,
		 struct milter_problems *problems)
{
	struct milter_dataset *set;
	char **names = NULL;
	size_t count = 0;

	*names_r = NULL;
	if (open_dataset(config, keyword, &set, problems) < 0)
		return;
	if (with_from) {
		names = dkim_calloc(2, sizeof(*names));
		names[count++] = dkim_strdup("From");
	}
	for (size_t i = 0; set != NULL && i < milter_dataset_count(set); i++) {
		const char *name = milter_dataset_entry(set, i)->key;

		if (!field_name_ok(name)) {
			milter_config_problem(config, problems, true, keyword,
				"'%s' is not a header field name", name);
			continue;
		}
		if (with_from && strcasecmp(name, "From") == 0)
			continue;
		names = dkim_realloc(names, (count + 2) * sizeof(*names));
		names[count++] = dkim_strdup(name);
		names[count] = NULL;
	}
	milter_dataset_free(&set);
	*names_r = names;
}

/* libmilter's socket forms, as OpenDKIM and Sendmail write them. */
static bool
socket_ok(const char *spec)
{
	const char *colon = strchr(spec, ':');

	if (spec[0] == '/')
		return true;
	if (colon == NULL)
		return false;
	size_t type_len = (size_t)(colon - spec);
	if ((type_len == 5 && strncmp(spec, "local", 5) == 0) ||
	    (type_len == 4 && strncmp(spec, "unix", 4) == 0))
		return colon[1] == '/';
	if (!((type_len == 4 && strncmp(spec, "inet", 4) == 0) ||
	      (type_len == 5 && strncmp(spec, "inet6", 5) == 0)))
		return false;
	size_t port_len = strcspn(colon + 1, "@");
	if (port_len == 0 || (colon[1 + port_len] == '@' &&
			      colon[2 + port_len] == '\0'))
		return false;
	for (size_t i = 0; i < port_len; i++) {
		if (!isalnum((unsigned char)colon[1 + i]))
			return false;
	}
	return true;
}

int
milter_userid_lookup(const char *userid, struct milter_userid *id_r,
		     struct dkim_error *error)
{
	size_t user_len = strcspn(userid, ":");
	const char *group_name = userid[user_len] == ':' ?
		userid + user_len + 1 : NULL;
	struct passwd *pw;
	struct group *gr = NULL;

	memset(id_r, 0, sizeof(*id_r));
	if (user_len >= sizeof(id_r->user)) {
		dkim_error_set(error, "the user name is too long");
		return -1;
	}
	memcpy(id_r->user, userid, user_len);
	if ((pw = getpwnam(id_r->user)) == NULL) {
		dkim_error_set(error, "no user '%s'", id_r->user);
		return -1;
	}
	if (group_name != NULL && (gr = getgrnam(group_name)) == NULL) {
		dkim_error_set(error, "no group '%s'", group_name);
		return -1;
	}
	id_r->uid = pw->pw_uid;
	id_r->gid = gr != NULL ? gr->gr_gid : pw->pw_gid;
	id_r->group_given = gr != NULL;
	return 0;
}

/* The ways to name keys (opendkim.conf(5), Mode): Domain, KeyFile and
 * Selector, or KeyTable and SigningTable. */
static void
check_signing(struct milter_config *config, struct milter_problems *problems)
{
	static const char *const single[] = { "Domain", "KeyFile", "Selector" };
	bool tables = config->keytable != NULL || config->signingtable != NULL;

	if (!config->sign) {
		for (size_t i = 0; i < DKIM_N_ELEMENTS(single); i++) {
			if (milter_config_is_set(config, single[i]))
				milter_config_problem(config, problems, false,
					single[i], "not used: Mode has no s");
		}
		if (config->resign_mail_to != NULL)
			milter_config_problem(config, problems, false,
				"ResignMailTo", "not used: Mode has no s");
		return;
	}
	if (tables) {
		if (config->keytable == NULL || config->signingtable == NULL)
			milter_config_problem(config, problems, true,
				config->keytable == NULL ? "SigningTable" :
				"KeyTable", "needs %s too",
				config->keytable == NULL ? "KeyTable" :
				"SigningTable");
		for (size_t i = 0; i < DKIM_N_ELEMENTS(single); i++) {
			if (milter_config_is_set(config, single[i]))
				milter_config_problem(config, problems, false,
					single[i], "ignored: the KeyTable and "
					"SigningTable choose the keys");
		}
		return;
	}
	bool any = false, all = true;
	for (size_t i = 0; i < DKIM_N_ELEMENTS(single); i++) {
		any |= milter_config_is_set(config, single[i]);
		all &= milter_config_is_set(config, single[i]);
	}
	if (!any) {
		milter_config_problem(config, problems, false, "Mode",
			"signing, but no key is configured (Domain, KeyFile "
			"and Selector, or KeyTable and SigningTable): nothing "
			"is signed");
	} else if (!all) {
		for (size_t i = 0; i < DKIM_N_ELEMENTS(single); i++) {
			if (!milter_config_is_set(config, single[i]))
				milter_config_problem(config, problems, true,
					single[i], "missing: signing with one "
					"key needs Domain, KeyFile and "
					"Selector");
		}
	} else if (!dkim_selector_syntax_ok(config->selector)) {
		milter_config_problem(config, problems, true, "Selector",
				      "'%s' is not a selector",
				      config->selector);
	}
}

/* Warns about each SignFromTable pattern that dkim_wildcard_unanchored()
 * finds ("*example.com" also permits evil-example.com). */
static void
check_sign_from(const struct milter_config *config,
		struct milter_problems *problems)
{
	char why[DKIM_WILDCARD_WARNING_MAX];

	for (size_t i = 0; i < milter_dataset_count(config->sign_from); i++) {
		const struct milter_dataset_entry *entry =
			milter_dataset_entry(config->sign_from, i);
		char **patterns = milter_dataset_split_value(entry->value);

		for (char **pattern = patterns;
		     pattern != NULL && *pattern != NULL; pattern++) {
			if (!dkim_wildcard_unanchored(*pattern, why,
						      sizeof(why)))
				continue;
			milter_config_problem(config, problems, false,
				"SignFromTable", "%s: %s", entry->key, why);
		}
		milter_strings_free(&patterns);
	}
}

int
milter_config_load(struct milter_config *config,
		   struct milter_problems *problems)
{
	unsigned errors = problems->errors;

	config->privkey_flags = config->require_safe_keys ? 0 :
		DKIM_PRIVKEY_ALLOW_UNSAFE;
	(void)open_dataset(config, "Domain", &config->domains, problems);
	(void)open_dataset(config, "ResignMailTo", &config->resign_mail_to,
			   problems);
	if (open_dataset(config, "SignFromTable", &config->sign_from,
			 problems) == 0 && config->sign_from != NULL)
		check_sign_from(config, problems);
	open_hosts(config, "InternalHosts", "127.0.0.1,::1",
		   &config->internal_hosts, problems);
	open_hosts(config, "ExternalIgnoreList", NULL,
		   &config->external_ignore, problems);
	open_hosts(config, "PeerList", NULL, &config->peers, problems);
	open_header_list(config, "SignHeaders", false, &config->sign_headers,
			 problems);
	open_header_list(config, "OversignHeaders", true,
			 &config->oversign_headers, problems);

	if (config->socket == NULL)
		milter_config_problem(config, problems, true, "Socket",
			"missing (or give -p): where the MTA connects, e.g. "
			"inet:8891@127.0.0.1 or local:/run/dkim-milter/"
			"dkim-milter.sock");
	else if (!socket_ok(config->socket))
		milter_config_problem(config, problems, true, "Socket",
			"'%s': expected inet:PORT@HOST, inet6:PORT@HOST or "
			"local:/PATH", config->socket);
	if (config->trust_anchor_file != NULL &&
	    access(config->trust_anchor_file, R_OK) < 0)
		milter_config_problem(config, problems, true,
			"TrustAnchorFile", "cannot read %s: %s",
			config->trust_anchor_file, strerror(errno));
	struct milter_userid id;
	struct dkim_error error;
	if (config->userid != NULL &&
	    milter_userid_lookup(config->userid, &id, &error) < 0)
		milter_config_problem(config, problems, true, "UserID", "%s",
				      error.text);
	if (!config->sign && !config->verify)
		milter_config_problem(config, problems, true, "Mode",
				      "neither s nor v: nothing to do");
	check_signing(config, problems);
	if (config->sign && config->internal_hosts != NULL &&
	    milter_hosts_match_everything(config->internal_hosts))
		milter_config_problem(config, problems, false, "InternalHosts",
			"covers every address: any client on the Internet "
			"gets its mail signed with our keys; list the hosts "
			"that submit mail, and use ResignMailTo for "
			"forwarded mail");
	return problems->errors > errors ? -1 : 0;
}
