/* "doveadm dict" as a child process: see doveadm-dict.h. */
#include "doveadm-dict.h"
#include "dkim-keyed-table.h"
#include "dkim-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* doveadm's own messages quoted in errors are cut to this length. */
#define STDERR_SHOWN 2000

void
doveadm_dict_init(struct doveadm_dict *dict, const char *doveadm,
		  const char *config, const char *name)
{
	dict->doveadm = doveadm;
	dict->config = config;
	dict->target = strchr(name, ':') != NULL ? dkim_strdup(name) :
		dkim_strdup_printf("%s/%s", DKIM_DICT_FILTER_NAME, name);
}

void
doveadm_dict_deinit(struct doveadm_dict *dict)
{
	free(dict->target);
	dict->target = NULL;
}

void
doveadm_dict_rows_free(struct doveadm_dict_row **_rows, size_t count)
{
	struct doveadm_dict_row *rows = *_rows;

	if (rows == NULL)
		return;
	*_rows = NULL;
	for (size_t i = 0; i < count; i++) {
		free(rows[i].key);
		free(rows[i].value);
	}
	free(rows);
}

/* ---- running doveadm ---- */

/* Reads what is ready on fd into buf; returns false at end of file. */
static bool
read_ready(int fd, struct dkim_buf *buf, bool *too_long)
{
	char chunk[65536];
	ssize_t ret = read(fd, chunk, sizeof(chunk));

	if (ret < 0)
		return errno == EINTR || errno == EAGAIN;
	if (ret == 0)
		return false;
	if (buf->len + (size_t)ret > DOVEADM_DICT_MAX_OUTPUT)
		*too_long = true;
	else
		dkim_buf_append(buf, chunk, (size_t)ret);
	return true;
}

/* Runs doveadm with `args` (after the global options), collecting its
 * standard output; returns 0 when it exits 0, else -1 with error set. */
static int
run_doveadm(const struct doveadm_dict *dict, const char *const *args,
	    struct dkim_buf *out, struct dkim_error *error)
{
	const char *argv[16];
	size_t argc = 0;
	int out_pipe[2], err_pipe[2];

	argv[argc++] = dict->doveadm;
	if (dict->config != NULL) {
		argv[argc++] = "-c";
		argv[argc++] = dict->config;
	}
	argv[argc++] = "-f";
	argv[argc++] = "json";
	for (size_t i = 0; args[i] != NULL; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;

	if (pipe2(out_pipe, O_CLOEXEC) < 0)
		goto pipe_failed;
	if (pipe2(err_pipe, O_CLOEXEC) < 0) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		goto pipe_failed;
	}
	pid_t pid = fork();
	if (pid < 0) {
		dkim_error_set(error, "fork() failed: %s", strerror(errno));
		close(out_pipe[0]);
		close(out_pipe[1]);
		close(err_pipe[0]);
		close(err_pipe[1]);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
		    dup2(out_pipe[1], STDOUT_FILENO) < 0 ||
		    dup2(err_pipe[1], STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);

	struct dkim_buf err = { 0 };
	struct pollfd fds[2] = {
		{ .fd = out_pipe[0], .events = POLLIN },
		{ .fd = err_pipe[0], .events = POLLIN },
	};
	bool too_long = false, timed_out = false;
	time_t deadline = time(NULL) + DOVEADM_DICT_TIMEOUT_SECS;
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		time_t left = deadline - time(NULL);

		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(fds, 2, (int)left * 1000) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			if (!read_ready(fds[i].fd, i == 0 ? out : &err,
					&too_long)) {
				close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
	}
	for (size_t i = 0; i < 2; i++) {
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	}
	if (timed_out || too_long)
		kill(pid, SIGKILL);

	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int ret = -1;
	const char *what = err.data == NULL ? "" : err.data;
	if (timed_out) {
		dkim_error_set(error, "%s did not finish in %d seconds",
			       dict->doveadm, DOVEADM_DICT_TIMEOUT_SECS);
	} else if (too_long) {
		dkim_error_set(error, "%s wrote more than %d bytes",
			       dict->doveadm, DOVEADM_DICT_MAX_OUTPUT);
	} else if (WIFSIGNALED(status)) {
		dkim_error_set(error, "%s %s %s was killed by signal %d",
			       dict->doveadm, args[0], args[1],
			       WTERMSIG(status));
	} else if (WEXITSTATUS(status) != 0) {
		size_t len = strlen(what);
		while (len > 0 && (what[len - 1] == '\n' || what[len - 1] == ' '))
			len--;
		dkim_error_set(error, "%s %s %s failed (exit status %d): %.*s",
			       dict->doveadm, args[0], args[1],
			       WEXITSTATUS(status), (int)(len > STDERR_SHOWN ?
			       STDERR_SHOWN : len), what);
	} else {
		ret = 0;
	}
	dkim_buf_free(&err);
	return ret;

pipe_failed:
	dkim_error_set(error, "pipe() failed: %s", strerror(errno));
	return -1;
}

int
doveadm_dict_iter(const struct doveadm_dict *dict, const char *prefix,
		  struct doveadm_dict_row **rows_r, size_t *count_r,
		  struct dkim_error *error)
{
	const char *const args[] = {
		"dict", "iter", dict->target, prefix, NULL
	};
	struct dkim_buf out = { 0 };
	int ret;

	dkim_buf_append_str(&out, "");
	ret = run_doveadm(dict, args, &out, error);
	if (ret == 0)
		ret = doveadm_dict_parse_json(out.data, out.len, rows_r,
					      count_r, error);
	dkim_buf_free(&out);
	return ret;
}

int
doveadm_dict_set(const struct doveadm_dict *dict, const char *key,
		 const char *value, struct dkim_error *error)
{
	const char *const args[] = {
		"dict", "set", dict->target, key, value, NULL
	};
	struct dkim_buf out = { 0 };
	int ret = run_doveadm(dict, args, &out, error);

	dkim_buf_free(&out);
	return ret;
}

int
doveadm_dict_unset(const struct doveadm_dict *dict, const char *key,
		   struct dkim_error *error)
{
	const char *const args[] = {
		"dict", "unset", dict->target, key, NULL
	};
	struct dkim_buf out = { 0 };
	int ret = run_doveadm(dict, args, &out, error);

	dkim_buf_free(&out);
	return ret;
}

/* ---- doveadm's JSON ---- */

struct json_reader {
	const char *p, *end;
};

static void
json_skip_space(struct json_reader *json)
{
	while (json->p < json->end && (*json->p == ' ' || *json->p == '\t' ||
				       *json->p == '\n' || *json->p == '\r'))
		json->p++;
}

static bool
json_expect(struct json_reader *json, char c)
{
	json_skip_space(json);
	if (json->p < json->end && *json->p == c) {
		json->p++;
		return true;
	}
	return false;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits after "\u"; -1 if there are none. */
static long
json_hex4(struct json_reader *json)
{
	long value = 0;

	if (json->end - json->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int digit = hex_value(json->p[i]);
		if (digit < 0)
			return -1;
		value = value * 16 + digit;
	}
	json->p += 4;
	return value;
}

static void
append_utf8(struct dkim_buf *buf, unsigned long cp)
{
	char bytes[4];
	size_t len;

	if (cp < 0x80) {
		bytes[0] = (char)cp;
		len = 1;
	} else if (cp < 0x800) {
		bytes[0] = (char)(0xc0 | (cp >> 6));
		bytes[1] = (char)(0x80 | (cp & 0x3f));
		len = 2;
	} else if (cp < 0x10000) {
		bytes[0] = (char)(0xe0 | (cp >> 12));
		bytes[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		bytes[2] = (char)(0x80 | (cp & 0x3f));
		len = 3;
	} else {
		bytes[0] = (char)(0xf0 | (cp >> 18));
		bytes[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		bytes[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		bytes[3] = (char)(0x80 | (cp & 0x3f));
		len = 4;
	}
	dkim_buf_append(buf, bytes, len);
}

/* A string (or null, read as ""); NULL with the error set on bad input.
 * A NUL byte (\u0000) cannot be part of a table entry: refused. */
static char *
json_string(struct json_reader *json)
{
	struct dkim_buf buf = { 0 };

	json_skip_space(json);
	if (json->end - json->p >= 4 && memcmp(json->p, "null", 4) == 0) {
		json->p += 4;
		return dkim_strdup("");
	}
	if (!json_expect(json, '"'))
		goto bad;
	dkim_buf_append_str(&buf, "");
	while (json->p < json->end && *json->p != '"') {
		char c = *json->p++;

		if ((unsigned char)c < 0x20)
			goto bad;
		if (c != '\\') {
			dkim_buf_append_c(&buf, c);
			continue;
		}
		if (json->p >= json->end)
			goto bad;
		c = *json->p++;
		switch (c) {
		case '"': case '\\': case '/':
			dkim_buf_append_c(&buf, c);
			break;
		case 'b': dkim_buf_append_c(&buf, '\b'); break;
		case 'f': dkim_buf_append_c(&buf, '\f'); break;
		case 'n': dkim_buf_append_c(&buf, '\n'); break;
		case 'r': dkim_buf_append_c(&buf, '\r'); break;
		case 't': dkim_buf_append_c(&buf, '\t'); break;
		case 'u': {
			long cp = json_hex4(json);

			if (cp >= 0xd800 && cp < 0xdc00) {
				/* a surrogate pair */
				long low = -1;
				if (json->end - json->p >= 2 &&
				    json->p[0] == '\\' && json->p[1] == 'u') {
					json->p += 2;
					low = json_hex4(json);
				}
				if (low < 0xdc00 || low > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
					(low - 0xdc00);
			} else if (cp <= 0 || (cp >= 0xdc00 && cp < 0xe000)) {
				goto bad;
			}
			append_utf8(&buf, (unsigned long)cp);
			break;
		}
		default:
			goto bad;
		}
	}
	if (!json_expect(json, '"'))
		goto bad;
	return dkim_buf_steal(&buf);
bad:
	dkim_buf_free(&buf);
	return NULL;
}

int
doveadm_dict_parse_json(const char *text, size_t len,
			struct doveadm_dict_row **rows_r, size_t *count_r,
			struct dkim_error *error)
{
	struct json_reader json = { .p = text, .end = text + len };
	struct doveadm_dict_row *rows = NULL;
	size_t count = 0;

	if (!json_expect(&json, '['))
		goto bad;
	if (!json_expect(&json, ']')) {
		do {
			char *key = NULL, *value = NULL;

			if (!json_expect(&json, '{'))
				goto bad;
			do {
				char *name = json_string(&json);
				char *member;

				if (name == NULL || !json_expect(&json, ':') ||
				    (member = json_string(&json)) == NULL) {
					free(name);
					free(key);
					free(value);
					goto bad;
				}
				char **slot = strcmp(name, "key") == 0 ? &key :
					strcmp(name, "value") == 0 ? &value :
					NULL;
				free(name);
				if (slot == NULL || *slot != NULL) {
					free(member);
				} else {
					*slot = member;
				}
			} while (json_expect(&json, ','));
			if (!json_expect(&json, '}') || key == NULL) {
				free(key);
				free(value);
				goto bad;
			}
			rows = dkim_realloc(rows, (count + 1) * sizeof(*rows));
			rows[count].key = key;
			rows[count].value = value != NULL ? value :
				dkim_strdup("");
			count++;
		} while (json_expect(&json, ','));
		if (!json_expect(&json, ']'))
			goto bad;
	}
	json_skip_space(&json);
	if (json.p != json.end)
		goto bad;
	*rows_r = rows;
	*count_r = count;
	return 0;
bad:
	doveadm_dict_rows_free(&rows, count);
	dkim_error_set(error, "doveadm's output is not the JSON expected "
		       "(at byte %zu)", (size_t)(json.p - text));
	return -1;
}
