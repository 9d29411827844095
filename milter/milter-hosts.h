/*
 * Host lists: InternalHosts, ExternalIgnoreList and PeerList, read as
 * OpenDKIM reads them (opendkim.conf(5), PeerList): each entry an IP
 * address (IPv4, IPv6, optionally in brackets), a network in CIDR form
 * ("192.168.1.0/24"), a host name, or a domain (".example.com" matches
 * the names below it); "!" in front excludes.  In a refile: data set a
 * '*' in a name is a wildcard.
 *
 * A client matches by its name first (the MTA's verified name), then by
 * its address; the most precise entry decides, so "192.168.1.1" wins over
 * "!192.168.1.0/24".  IPv4-mapped IPv6 addresses count as IPv4.
 */
#ifndef MILTER_HOSTS_H
#define MILTER_HOSTS_H

#include "dkim.h"
#include "milter-dataset.h"

#include <stdbool.h>
#include <sys/socket.h>

struct milter_hosts;

/* From a data set's keys; an entry that is none of the forms above is an
 * error naming it (and its line in a file). */
int milter_hosts_new(const struct milter_dataset *set,
		     struct milter_hosts **hosts_r, struct dkim_error *error);
/* From a comma list, e.g. InternalHosts' default "127.0.0.1,::1". */
int milter_hosts_new_list(const char *list, struct milter_hosts **hosts_r,
			  struct dkim_error *error);
void milter_hosts_free(struct milter_hosts **hosts);

/* `addr` may be NULL (no address known); `hostname` may be NULL. */
bool milter_hosts_match(const struct milter_hosts *hosts,
			const struct sockaddr *addr, const char *hostname);

/* True if the list takes every IPv4 or every IPv6 address (0.0.0.0/0,
 * ::/0): "internal" then means anyone. */
bool milter_hosts_match_everything(const struct milter_hosts *hosts);

#endif
