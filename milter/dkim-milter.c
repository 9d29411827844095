/* dkim-milter: DKIM signing, ARC sealing of forwarded mail and DKIM
 * verification for Postfix and Sendmail, configured by an opendkim.conf.
 * See dkim-milter(8). */
#include "dkim-util.h"
#include "milter-callbacks.h"
#include "milter-config.h"
#include "milter-keys.h"
#include "milter-log.h"
#include "milter-verify.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 64		/* EX_USAGE */
#define EXIT_CONFIG 78		/* EX_CONFIG */
#define EXIT_SOFTWARE 70	/* EX_SOFTWARE */
/* How long a stopping milter waits for its connections to end. */
#define SHUTDOWN_WAIT_SECS 30
/* Room for 200 and more simultaneous SMTP sessions each connecting. */
#define LISTEN_BACKLOG 512

static const char usage_text[] =
	"usage: dkim-milter [-x CONFIGFILE] [-f] [-n] [-p SOCKETSPEC] "
	"[-P PIDFILE]\n";

struct options {
	const char *config_path;
	const char *socket, *pidfile;
	bool foreground, check_only;
};

static void
usage(FILE *out)
{
	fputs(usage_text, out);
	fprintf(out, "  -x FILE  configuration (opendkim.conf syntax; default "
		"%s)\n"
		"  -f       stay in the foreground, log to standard error too\n"
		"  -n       check the configuration and exit (0: usable)\n"
		"  -p SPEC  the socket: inet:PORT@HOST, inet6:PORT@HOST or "
		"local:/PATH\n"
		"  -P FILE  write the process id to FILE\n",
		DKIM_MILTER_DEFAULT_CONFIG);
}

static int
parse_options(int argc, char **argv, struct options *options)
{
	static const struct option long_options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(options, 0, sizeof(*options));
	options->config_path = DKIM_MILTER_DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "x:fnp:P:h", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'x':
			options->config_path = optarg;
			break;
		case 'f':
			options->foreground = true;
			break;
		case 'n':
			options->check_only = true;
			break;
		case 'p':
			options->socket = optarg;
			break;
		case 'P':
			options->pidfile = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static void
print_problems(struct milter_problems *problems)
{
	for (size_t i = 0; i < problems->count; i++)
		fprintf(stderr, "dkim-milter: %s\n", problems->lines[i]);
	fflush(stderr);
	milter_problems_free(problems);
}

/* UserID: "user[:group]"; the user's groups unless a group is given. */
static int
drop_privileges(const char *userid)
{
	struct milter_userid id;
	struct dkim_error error;

	if (milter_userid_lookup(userid, &id, &error) < 0) {
		fprintf(stderr, "dkim-milter: UserID %s: %s\n", userid,
			error.text);
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == id.uid)
			return 0;
		fprintf(stderr, "dkim-milter: UserID %s needs root\n", userid);
		return -1;
	}
	if ((id.group_given ? setgroups(1, &id.gid) :
	     initgroups(id.user, id.gid)) < 0 || setgid(id.gid) < 0 ||
	    setuid(id.uid) < 0) {
		fprintf(stderr, "dkim-milter: cannot become %s: %s\n", userid,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* A local: socket belongs to the user the milter runs as, so that the
 * UMask and the group decide who may connect. */
static void
chown_socket(const char *socket, const char *userid)
{
	const char *path = strncmp(socket, "local:", 6) == 0 ? socket + 6 :
		strncmp(socket, "unix:", 5) == 0 ? socket + 5 :
		socket[0] == '/' ? socket : NULL;
	struct milter_userid id;
	struct dkim_error error;

	if (path != NULL && milter_userid_lookup(userid, &id, &error) == 0 &&
	    chown(path, id.uid, id.gid) < 0)
		fprintf(stderr, "dkim-milter: cannot give %s to %s: %s\n",
			path, userid, strerror(errno));
}

static int
write_pidfile(const char *path)
{
	FILE *file = fopen(path, "w");
	bool written = file != NULL &&
		fprintf(file, "%ld\n", (long)getpid()) > 0;

	if (file != NULL && fclose(file) != 0)
		written = false;
	if (!written) {
		fprintf(stderr, "dkim-milter: cannot write %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Goes to the background; the parent stays until the child says whether
 * it started (its problems are still printed on the terminal) and exits
 * with that status.  Returns the descriptor to report on, or -1. */
static int
daemonize(void)
{
	int fds[2];
	unsigned char status = EXIT_SOFTWARE;

	if (pipe(fds) < 0) {
		perror("dkim-milter: pipe");
		exit(EXIT_SOFTWARE);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("dkim-milter: fork");
		exit(EXIT_SOFTWARE);
	}
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &status, 1) != 1)
			status = EXIT_SOFTWARE;
		_exit(status);
	}
	close(fds[0]);
	setsid();
	return fds[1];
}

static void
report_start(int fd, unsigned char status)
{
	if (fd >= 0) {
		if (write(fd, &status, 1) != 1)
			perror("dkim-milter: reporting to the parent");
		close(fd);
	}
}

static void
detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* Opens the data sets, tables and keys, as the user the milter runs as,
 * and sets up the resolvers.  Problems are printed; returns the number
 * of errors. */
static unsigned
load(struct milter_config *config)
{
	struct milter_problems problems = { 0 };
	struct dkim_error error;
	unsigned errors;

	if (milter_config_load(config, &problems) == 0) {
		milter_keys_check(config, &problems);
		if ((config->verify || config->resign_mail_to != NULL) &&
		    milter_resolvers_init(config, &error) < 0)
			milter_config_problem(config, &problems, true,
				config->nameserver != NULL ? "Nameservers" :
				"TrustAnchorFile", "%s", error.text);
	}
	errors = problems.errors;
	print_problems(&problems);
	return errors;
}

static void
wait_for_connections(void)
{
	for (unsigned i = 0; i < SHUTDOWN_WAIT_SECS * 10 &&
	     milter_connections_open() > 0; i++) {
		struct timespec tenth = { 0, 100 * 1000 * 1000 };
		nanosleep(&tenth, NULL);
	}
}

/* libmilter answers a command with a few small writes (at the end of a
 * message: one per header change, then the verdict), and the MTA does not
 * acknowledge the first until its delayed-ACK timer fires: with Nagle's
 * algorithm every message would wait about 40 ms twice.  libmilter keeps
 * the listening socket to itself, so it is found among our descriptors;
 * Linux gives its TCP_NODELAY to every connection it accepts. */
static void
disable_nagle_on_listener(void)
{
	int max_fd = (int)sysconf(_SC_OPEN_MAX);

	for (int fd = 3; fd < max_fd && fd < 4096; fd++) {
		int listening = 0, domain = 0, on = 1;
		socklen_t len = sizeof(listening);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
			       &len) < 0 || !listening)
			continue;
		len = sizeof(domain);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
		    (domain != AF_INET && domain != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
			       sizeof(on)) < 0)
			fprintf(stderr, "dkim-milter: TCP_NODELAY: %s\n",
				strerror(errno));
	}
}

static int
run(struct milter_config *config, const struct options *options)
{
	int report_fd = -1;

	if (smfi_setconn(config->socket) != MI_SUCCESS ||
	    smfi_setbacklog(LISTEN_BACKLOG) != MI_SUCCESS ||
	    smfi_register(*milter_callbacks(config)) != MI_SUCCESS) {
		fprintf(stderr, "dkim-milter: cannot set up libmilter\n");
		return EXIT_SOFTWARE;
	}
	/* Before giving up root: a socket in a directory only root may
	 * write, or a port below 1024. */
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "dkim-milter: cannot listen on %s\n",
			config->socket);
		return EXIT_SOFTWARE;
	}
	disable_nagle_on_listener();
	if (config->userid != NULL && geteuid() == 0)
		chown_socket(config->socket, config->userid);
	if (config->background && !options->foreground)
		report_fd = daemonize();
	if (config->pidfile != NULL && write_pidfile(config->pidfile) < 0) {
		report_start(report_fd, EXIT_SOFTWARE);
		return EXIT_SOFTWARE;
	}
	if ((config->userid != NULL && drop_privileges(config->userid) < 0) ||
	    load(config) > 0) {
		report_start(report_fd, EXIT_CONFIG);
		return EXIT_CONFIG;
	}
	milter_log_open(config->syslog_name != NULL ? config->syslog_name :
			"dkim-milter", config->syslog, config->syslog_facility,
			report_fd < 0);
	milter_log(MILTER_LOG_INFO, "started: mode %s%s, listening on %s",
		   config->sign ? "s" : "", config->verify ? "v" : "",
		   config->socket);
	report_start(report_fd, 0);
	if (report_fd >= 0)
		detach_stdio();

	int ret = smfi_main() == MI_SUCCESS ? 0 : EXIT_SOFTWARE;
	wait_for_connections();
	milter_log(MILTER_LOG_INFO, "stopped");
	if (config->pidfile != NULL)
		(void)unlink(config->pidfile);
	return ret;
}

int
main(int argc, char **argv)
{
	struct milter_problems problems = { 0 };
	struct milter_config config;
	struct options options;
	int ret;

	if (parse_options(argc, argv, &options) < 0)
		return EXIT_USAGE;
	milter_config_init(&config);
	if (milter_config_read(&config, options.config_path, &problems) < 0) {
		print_problems(&problems);
		milter_config_free(&config);
		return EXIT_CONFIG;
	}
	if (options.socket != NULL)
		(void)milter_config_set(&config, "Socket", options.socket,
					"-p", &problems);
	if (options.pidfile != NULL)
		(void)milter_config_set(&config, "PidFile", options.pidfile,
					"-P", &problems);
	unsigned errors = problems.errors;
	print_problems(&problems);

	if (config.base_directory != NULL &&
	    chdir(config.base_directory) < 0) {
		fprintf(stderr, "dkim-milter: BaseDirectory %s: %s\n",
			config.base_directory, strerror(errno));
		errors++;
	}
	if (config.umask >= 0)
		umask((mode_t)config.umask);
	milter_keys_init(&config);
	if (options.check_only) {
		/* as the milter would run, so the files it reads are
		 * checked with its rights (an unknown UserID is reported
		 * with the other problems) */
		struct milter_userid id;
		struct dkim_error error;
		if (config.userid != NULL && errors == 0 &&
		    milter_userid_lookup(config.userid, &id, &error) == 0 &&
		    drop_privileges(config.userid) < 0)
			errors++;
		errors += load(&config);
		ret = errors > 0 ? EXIT_CONFIG : 0;
	} else if (errors > 0) {
		ret = EXIT_CONFIG;
	} else {
		ret = run(&config, &options);
	}
	milter_resolvers_deinit();
	milter_keys_deinit();
	milter_log_close();
	milter_config_free(&config);
	return ret;
}
