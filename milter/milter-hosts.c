/* Host lists: see milter-hosts.h. */
#include "milter-hosts.h"
#include "dkim-keytable.h"
#include "dkim-util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct host_entry {
	bool exclude;
	bool is_address;
	/* an address: family, the bytes and the prefix length */
	int family;
	unsigned char bytes[16];
	unsigned prefix;
	/* a name: exact, ".domain" (everything below), or a wildcard */
	char *name;
	bool wildcard;
};

struct milter_hosts {
	struct host_entry *entries;
	size_t count;
};

/* "192.168.0.0/255.255.255.0", as some guides write networks: the mask
 * must be contiguous ones. */
static bool
parse_netmask(const char *text, struct host_entry *entry)
{
	struct in_addr mask;

	if (inet_pton(AF_INET, text, &mask) != 1)
		return false;
	uint32_t bits = ntohl(mask.s_addr);
	unsigned prefix = 0;
	while (prefix < 32 && (bits & (0x80000000u >> prefix)) != 0)
		prefix++;
	if (prefix < 32 && (bits << prefix) != 0)
		return false;
	entry->prefix = prefix;
	entry->is_address = true;
	return true;
}

static bool
parse_address(const char *text, struct host_entry *entry)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t len = strlen(text);
	const char *slash = strchr(text, '/');
	size_t addr_len = slash != NULL ? (size_t)(slash - text) : len;

	if (addr_len >= 2 && text[0] == '[' && text[addr_len - 1] == ']') {
		text++;
		addr_len -= 2;
	}
	if (addr_len == 0 || addr_len >= sizeof(buf))
		return false;
	memcpy(buf, text, addr_len);
	buf[addr_len] = '\0';
	if (inet_pton(AF_INET, buf, entry->bytes) == 1) {
		entry->family = AF_INET;
		entry->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, entry->bytes) == 1) {
		entry->family = AF_INET6;
		entry->prefix = 128;
	} else {
		return false;
	}
	if (slash != NULL) {
		char *end;
		unsigned long prefix = strtoul(slash + 1, &end, 10);
		if (entry->family == AF_INET && *end == '.')
			return parse_netmask(slash + 1, entry);
		if (slash[1] == '\0' || !isdigit((unsigned char)slash[1]) ||
		    *end != '\0' || prefix > entry->prefix)
			return false;
		entry->prefix = (unsigned)prefix;
	}
	entry->is_address = true;
	return true;
}

static bool
parse_name(const char *text, bool patterns, struct host_entry *entry)
{
	if (*text == '\0')
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_' && !(patterns && *p == '*'))
			return false;
	}
	entry->name = dkim_strdup(text);
	entry->wildcard = patterns && strchr(text, '*') != NULL;
	return true;
}

static void
hosts_add(struct milter_hosts *hosts, const struct host_entry *entry)
{
	hosts->entries = dkim_realloc(hosts->entries,
				      (hosts->count + 1) * sizeof(*entry));
	hosts->entries[hosts->count++] = *entry;
}

int
milter_hosts_new(const struct milter_dataset *set,
		 struct milter_hosts **hosts_r, struct dkim_error *error)
{
	struct milter_hosts *hosts = dkim_calloc(1, sizeof(*hosts));
	bool patterns = milter_dataset_kind(set) == MILTER_DATASET_PATTERNS;

	for (size_t i = 0; i < milter_dataset_count(set); i++) {
		const struct milter_dataset_entry *item =
			milter_dataset_entry(set, i);
		struct host_entry entry = { 0 };
		const char *text = item->key;

		entry.exclude = text[0] == '!';
		if (entry.exclude)
			text++;
		if (!parse_address(text, &entry) &&
		    !parse_name(text, patterns, &entry)) {
			if (item->line != 0)
				dkim_error_set(error, "%s line %u: '%s' is not an "
					"IP address, network or host name",
					milter_dataset_source(set), item->line,
					item->key);
			else
				dkim_error_set(error, "'%s' is not an IP "
					"address, network or host name",
					item->key);
			milter_hosts_free(&hosts);
			return -1;
		}
		hosts_add(hosts, &entry);
	}
	*hosts_r = hosts;
	return 0;
}

int
milter_hosts_new_list(const char *list, struct milter_hosts **hosts_r,
		      struct dkim_error *error)
{
	struct milter_dataset *set = milter_dataset_parse_list(list);
	int ret = milter_hosts_new(set, hosts_r, error);

	milter_dataset_free(&set);
	return ret;
}

void
milter_hosts_free(struct milter_hosts **_hosts)
{
	struct milter_hosts *hosts = *_hosts;

	if (hosts == NULL)
		return;
	*_hosts = NULL;
	for (size_t i = 0; i < hosts->count; i++)
		free(hosts->entries[i].name);
	free(hosts->entries);
	free(hosts);
}

/* How precisely a name entry matches the host name: its length, or 0. */
static size_t
name_match(const struct host_entry *entry, const char *hostname)
{
	size_t name_len = strlen(entry->name), host_len = strlen(hostname);

	if (entry->wildcard)
		return dkim_wildcard_match(entry->name, hostname) ? name_len : 0;
	if (entry->name[0] == '.')
		return host_len > name_len &&
			strcasecmp(hostname + host_len - name_len,
				   entry->name) == 0 ? name_len : 0;
	return strcasecmp(entry->name, hostname) == 0 ? name_len : 0;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* The client address as family and bytes; IPv4-mapped IPv6 as IPv4. */
static bool
client_address(const struct sockaddr *addr, int *family_r,
	       unsigned char bytes[16])
{
	if (addr == NULL)
		return false;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)addr;
		memcpy(bytes, &in->sin_addr, 4);
		*family_r = AF_INET;
		return true;
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(bytes, in6->sin6_addr.s6_addr + 12, 4);
			*family_r = AF_INET;
		} else {
			memcpy(bytes, in6->sin6_addr.s6_addr, 16);
			*family_r = AF_INET6;
		}
		return true;
	}
	return false;
}

bool
milter_hosts_match(const struct milter_hosts *hosts,
		   const struct sockaddr *addr, const char *hostname)
{
	const struct host_entry *best = NULL;
	size_t best_len = 0;
	unsigned char bytes[16];
	int family;

	/* Names first; "unknown" and "[1.2.3.4]" are what an MTA passes
	 * for a client without a verified name. */
	if (hostname != NULL && hostname[0] != '[' &&
	    strcasecmp(hostname, "unknown") != 0) {
		for (size_t i = 0; i < hosts->count; i++) {
			const struct host_entry *entry = &hosts->entries[i];
			size_t len = entry->is_address ? 0 :
				name_match(entry, hostname);
			if (len > best_len) {
				best = entry;
				best_len = len;
			}
		}
		if (best != NULL)
			return !best->exclude;
	}
	if (!client_address(addr, &family, bytes))
		return false;
	for (size_t i = 0; i < hosts->count; i++) {
		const struct host_entry *entry = &hosts->entries[i];

		if (!entry->is_address || entry->family != family ||
		    !prefix_match(entry->bytes, bytes, entry->prefix))
			continue;
		if (best == NULL || entry->prefix > best->prefix)
			best = entry;
	}
	return best != NULL && !best->exclude;
}

bool
milter_hosts_match_everything(const struct milter_hosts *hosts)
{
	for (size_t i = 0; i < hosts->count; i++) {
		const struct host_entry *entry = &hosts->entries[i];
		if (entry->is_address && !entry->exclude && entry->prefix == 0)
			return true;
	}
	return false;
}
