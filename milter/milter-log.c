/* dkim-milter's log: see milter-log.h. */
#include "milter-log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static bool log_to_syslog, log_to_stderr = true;
static const char *log_name = "dkim-milter";

void
milter_log_open(const char *name, bool to_syslog, int facility,
		bool to_stderr)
{
	log_name = name;
	log_to_syslog = to_syslog;
	log_to_stderr = to_stderr;
	if (to_syslog)
		openlog(name, LOG_PID | LOG_NDELAY, facility);
}

void
milter_log_close(void)
{
	if (log_to_syslog)
		closelog();
	log_to_syslog = false;
}

void
milter_log(enum milter_log_level level, const char *fmt, ...)
{
	static const int priorities[] = {
		[MILTER_LOG_ERROR] = LOG_ERR,
		[MILTER_LOG_WARNING] = LOG_WARNING,
		[MILTER_LOG_INFO] = LOG_INFO,
	};
	static const char *const prefixes[] = {
		[MILTER_LOG_ERROR] = "error: ",
		[MILTER_LOG_WARNING] = "warning: ",
		[MILTER_LOG_INFO] = "",
	};
	char text[2048];
	va_list args;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);
	if (log_to_syslog)
		syslog(priorities[level], "%s%s", prefixes[level], text);
	/* One call per line: stdio locks the stream, so lines of several
	 * threads never mix. */
	if (log_to_stderr)
		fprintf(stderr, "%s: %s%s\n", log_name, prefixes[level], text);
}

char *
milter_shown(char out[MILTER_SHOWN_MAX + 4], const char *text)
{
	size_t len = 0;

	for (; text != NULL && text[len] != '\0' && len < MILTER_SHOWN_MAX;
	     len++) {
		unsigned char c = (unsigned char)text[len];
		out[len] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (text != NULL && text[len] != '\0') {
		memcpy(out + len, "...", 3);
		len += 3;
	}
	out[len] = '\0';
	return out;
}
