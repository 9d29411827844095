/*
 * dkim-milter's log: syslog (OpenDKIM's Syslog, SyslogFacility,
 * SyslogName) and, in the foreground, standard error.  Safe to call from
 * any thread.
 */
#ifndef MILTER_LOG_H
#define MILTER_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum milter_log_level {
	MILTER_LOG_ERROR,
	MILTER_LOG_WARNING,
	MILTER_LOG_INFO,
};

/* `name` prefixes every line (OpenDKIM's SyslogName); `facility` is a
 * syslog facility (LOG_MAIL) when `to_syslog`. */
void milter_log_open(const char *name, bool to_syslog, int facility,
		     bool to_stderr);
void milter_log_close(void);

void milter_log(enum milter_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The longest message-derived text shown in a log line or an SMTP reply
 * (an address, a login, a reason quoting them). */
#define MILTER_SHOWN_MAX 256

/* Copies `text` into `out` (MILTER_SHOWN_MAX + 4 bytes) as printable
 * US-ASCII: other bytes become '?', and text beyond MILTER_SHOWN_MAX is
 * cut with "...".  Whatever a sender wrote cannot forge a log line or
 * break an SMTP reply then.  Returns `out`; a NULL text gives "". */
char *milter_shown(char out[MILTER_SHOWN_MAX + 4], const char *text);

#endif
