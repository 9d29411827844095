/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012), the keyed hash of the header field name index.  With a key the
 * sender cannot know, a sender cannot choose names that collide, which an
 * unkeyed hash lets them do to turn every lookup into a walk over all the
 * names (security issue, bug 3).  Short inputs are what it was made for:
 * a field name costs a few tens of nanoseconds. */
#include "dkim-private.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ROTL64(x, bits) (((x) << (bits)) | ((x) >> (64 - (bits))))

struct sip_state {
	uint64_t v0, v1, v2, v3;
};

static inline void
sip_round(struct sip_state *s)
{
	s->v0 += s->v1; s->v1 = ROTL64(s->v1, 13); s->v1 ^= s->v0;
	s->v0 = ROTL64(s->v0, 32);
	s->v2 += s->v3; s->v3 = ROTL64(s->v3, 16); s->v3 ^= s->v2;
	s->v0 += s->v3; s->v3 = ROTL64(s->v3, 21); s->v3 ^= s->v0;
	s->v2 += s->v1; s->v1 = ROTL64(s->v1, 17); s->v1 ^= s->v2;
	s->v2 = ROTL64(s->v2, 32);
}

static inline void
sip_compress(struct sip_state *s, uint64_t word)
{
	s->v3 ^= word;
	sip_round(s);
	sip_round(s);
	s->v0 ^= word;
}

/* Lowercases the ASCII letters among the eight bytes of `word` at once;
 * other bytes, 0x80-0xff included, are left alone. */
static inline uint64_t
ascii_lower_word(uint64_t word)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t high_bits = ones * 0x80;
	uint64_t low7 = word & (ones * 0x7f);
	/* The high bit of each byte of at_least_a is set where the byte's
	 * low seven bits are >= 'A', of above_z where they are > 'Z'; no
	 * sum carries into the next byte. */
	uint64_t at_least_a = low7 + ones * (0x80 - 'A');
	uint64_t above_z = low7 + ones * (0x80 - 'Z' - 1);
	uint64_t upper = at_least_a & ~above_z & ~word & high_bits;

	return word | (upper >> 2); /* 0x80 >> 2 == 'a' - 'A' */
}

static inline uint64_t
siphash(const struct dkim_siphash_key *key, const void *data, size_t len,
	bool fold_case)
{
	const unsigned char *p = data;
	struct sip_state s = {
		.v0 = key->k0 ^ 0x736f6d6570736575ULL,
		.v1 = key->k1 ^ 0x646f72616e646f6dULL,
		.v2 = key->k0 ^ 0x6c7967656e657261ULL,
		.v3 = key->k1 ^ 0x7465646279746573ULL,
	};
	size_t whole = len & ~(size_t)7;
	uint64_t word;

	for (size_t i = 0; i < whole; i += 8) {
		memcpy(&word, p + i, 8);
		word = le64toh(word);
		sip_compress(&s, fold_case ? ascii_lower_word(word) : word);
	}
	word = 0;
	for (size_t i = len; i > whole; i--)
		word = (word << 8) | p[i - 1];
	if (fold_case)
		word = ascii_lower_word(word);
	sip_compress(&s, word | ((uint64_t)len << 56));

	s.v2 ^= 0xff;
	for (unsigned i = 0; i < 4; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t
dkim_siphash(const struct dkim_siphash_key *key, const void *data,
	     size_t len)
{
	return siphash(key, data, len, false);
}

uint64_t
dkim_siphash_icase(const struct dkim_siphash_key *key, const void *data,
		   size_t len)
{
	return siphash(key, data, len, true);
}

void
dkim_siphash_key_set(struct dkim_siphash_key *key,
		     const unsigned char bytes[DKIM_SIPHASH_KEY_LEN])
{
	uint64_t half;

	memcpy(&half, bytes, 8);
	key->k0 = le64toh(half);
	memcpy(&half, bytes + 8, 8);
	key->k1 = le64toh(half);
}

/* ---- the per-process key ---- */

static struct dkim_siphash_key process_key;
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void
make_process_key(void)
{
	unsigned char bytes[DKIM_SIPHASH_KEY_LEN];
	size_t got = 0;

	while (got < sizeof(bytes)) {
		ssize_t ret = getrandom(bytes + got, sizeof(bytes) - got, 0);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			/* As Dovecot's own random_fill() does: a process
			 * without kernel randomness is in trouble anyway. */
			fprintf(stderr, "dkimcore: getrandom() failed: %s\n",
				ret < 0 ? strerror(errno) : "no bytes");
			abort();
		}
		got += (size_t)ret;
	}
	dkim_siphash_key_set(&process_key, bytes);
}

const struct dkim_siphash_key *
dkim_siphash_process_key(void)
{
	pthread_once(&process_key_once, make_process_key);
	return &process_key;
}
