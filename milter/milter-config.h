/*
 * dkim-milter's configuration: an opendkim.conf file read as it is
 * (opendkim.conf(5): "Keyword value" lines, '#' comments, keywords in any
 * case, booleans by their first letter), so that an OpenDKIM installation
 * moves over with nothing but paths to check.
 *
 * Every keyword of OpenDKIM 2.11 is known, in one of four ways (the table
 * in milter-config.c, and dkim-milter(8)):
 *   - implemented;
 *   - accepted with a one-line warning, when it changes neither what is
 *     signed nor how mail is judged (SoftwareHeader, AutoRestart ...);
 *   - refused by name when it would change either and is not
 *     implemented (never silently ignored);
 *   - refused with the reason when it is deliberately not supported
 *     (ADSP, DomainKeys, l=, rsa-sha1 ...), or accepted only with the
 *     value that matches what dkim-milter does.
 * dkim-milter's own keywords: SignFromTable and On-UnauthorizedFrom.
 *
 * Reading happens in two steps: milter_config_read() parses the text
 * (and Include files), milter_config_load() then opens the data sets and
 * checks the settings against each other.  Keys and tables are checked by
 * milter-keys.c.  Each problem is one line naming the file, the line and
 * the keyword.
 */
#ifndef MILTER_CONFIG_H
#define MILTER_CONFIG_H

#include "dkim.h"
#include "dkim-keytable.h"
#include "milter-dataset.h"
#include "milter-hosts.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The path used without -x: $(sysconfdir)/dkim-milter.conf. */
#ifndef DKIM_MILTER_DEFAULT_CONFIG
#define DKIM_MILTER_DEFAULT_CONFIG "/etc/dkim-milter.conf"
#endif

/* What happens to a message in each case (OpenDKIM's On-* keywords, and
 * dkim-milter's On-UnauthorizedFrom). */
enum milter_on {
	MILTER_ON_BAD_SIGNATURE,	/* fail, policy, or unusable */
	MILTER_ON_DNS_ERROR,		/* temperror */
	MILTER_ON_KEY_NOT_FOUND,	/* permerror: no key in DNS */
	MILTER_ON_NO_SIGNATURE,
	MILTER_ON_INTERNAL_ERROR,	/* ours: verification could not run */
	MILTER_ON_SIGNATURE_ERROR,	/* ours: the message could not be signed */
	MILTER_ON_UNAUTHORIZED_FROM,	/* a logged-in user's foreign From */
	MILTER_ON_COUNT
};

enum milter_action {
	MILTER_ACTION_ACCEPT,
	MILTER_ACTION_REJECT,
	MILTER_ACTION_TEMPFAIL,
	MILTER_ACTION_QUARANTINE,
};

const char *milter_action_name(enum milter_action action);

struct milter_config_state;

struct milter_config {
	/* Mode */
	bool sign, verify;

	/* the daemon */
	char *socket, *pidfile, *userid, *base_directory;
	int umask;			/* -1: as inherited */
	bool background;
	bool syslog, syslog_success, log_why, log_results;
	int syslog_facility;
	char *syslog_name;

	/* what is signed, and with which key */
	struct milter_dataset *domains;	/* Domain, with KeyFile and Selector */
	bool subdomains;
	char *selector, *keyfile;
	char *keytable;			/* KeyTable file, or NULL */
	char *signingtable;		/* SigningTable file, or NULL */
	enum dkim_table_kind signingtable_kind;
	bool multiple_signatures, remove_old_signatures;
	bool require_safe_keys;
	unsigned privkey_flags;		/* RequireSafeKeys no: ALLOW_UNSAFE */
	enum dkim_canon header_canon, body_canon;
	char **sign_headers;		/* NULL: the core's default set */
	char **oversign_headers;	/* From, then OversignHeaders */
	unsigned long signature_ttl;	/* x= - t=, 0 for no x= */
	struct milter_hosts *internal_hosts, *external_ignore, *peers;
	struct milter_dataset *resign_mail_to;
	struct milter_dataset *sign_from;	/* login -> patterns */

	/* how mail is judged */
	char *authserv_id;		/* NULL: the MTA's name ({j}) */
	char *trust_anchor_file;
	char *nameserver;		/* ADDR[@PORT], or NULL */
	struct dkim_verify_config verify_config;
	enum milter_action on[MILTER_ON_COUNT];

	struct milter_config_state *state;
};

/* Problems found while reading, one line each: "error: FILE line N:
 * Keyword: text" or "warning: ...". */
struct milter_problems {
	char **lines;
	size_t count;
	unsigned errors;
};

void milter_problems_add(struct milter_problems *problems, bool error,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void milter_problems_free(struct milter_problems *problems);

/* The defaults: Mode sv, relaxed/relaxed, From oversigned,
 * InternalHosts 127.0.0.1 and ::1, RequireSafeKeys, Syslog, Background,
 * On-SignatureError and On-InternalError tempfail, the rest accept. */
void milter_config_init(struct milter_config *config);
void milter_config_free(struct milter_config *config);

/* Parses the file at `path` and the files it Includes.  Returns -1 if the
 * file cannot be read (nothing was parsed), else 0: the problems say
 * what was wrong in it. */
int milter_config_read(struct milter_config *config, const char *path,
		       struct milter_problems *problems);
/* Parses text in memory, `source` naming it; Include is refused when
 * `allow_include` is false (text that must not make us read files). */
int milter_config_parse(struct milter_config *config, const char *text,
			size_t size, const char *source, bool allow_include,
			struct milter_problems *problems);
/* Replaces a setting as the command line does (-p: "Socket"), as if it
 * came from `source`. */
int milter_config_set(struct milter_config *config, const char *keyword,
		      const char *value, const char *source,
		      struct milter_problems *problems);

/* Opens the data sets and checks the settings against each other.  Run
 * it as the user the milter runs as (UserID): the files must be readable
 * then. */
int milter_config_load(struct milter_config *config,
		       struct milter_problems *problems);

/* UserID, "user[:group]": the user, and the group to run with (the
 * user's own unless one is given, with `group_given` then). */
struct milter_userid {
	char user[256];
	uid_t uid;
	gid_t gid;
	bool group_given;
};

int milter_userid_lookup(const char *userid, struct milter_userid *id_r,
			 struct dkim_error *error);

/* Adds a problem about a keyword at the place it was set (or the config
 * file, if it was not set); for the checks done elsewhere (keys). */
void milter_config_problem(const struct milter_config *config,
			   struct milter_problems *problems, bool error,
			   const char *keyword, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* True if the keyword was set (in the file or by an option). */
bool milter_config_is_set(const struct milter_config *config,
			  const char *keyword);

#endif
