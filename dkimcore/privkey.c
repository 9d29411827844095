/* Private keys for signing: loading (with a permission check like
 * OpenDKIM's RequireSafeKeys), the matching public record, and comparison
 * with a published key. */
#include "dkim-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DKIM_MAX_KEY_FILE_SIZE (1024 * 1024)

/* Never prompt for a passphrase: an encrypted key is an error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *context)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)context;
	return -1;
}

static EVP_PKEY *
parse_pem(const void *data, size_t len)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	EVP_PKEY *pkey = NULL;

	if (bio != NULL) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	return pkey;
}

/* dkimpy and RFC 8463 publish Ed25519 private keys as a base64 seed. */
static EVP_PKEY *
parse_ed25519_seed(const void *data, size_t len)
{
	size_t seed_len;
	unsigned char *seed = dkim_base64_decode(data, len, &seed_len);
	EVP_PKEY *pkey = NULL;

	if (seed != NULL && seed_len == DKIM_ED25519_KEY_LEN)
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						    seed, seed_len);
	if (seed != NULL)
		OPENSSL_cleanse(seed, seed_len);
	free(seed);
	return pkey;
}

int
dkim_privkey_parse(const void *data, size_t len, dkim_privkey **key_r,
		   struct dkim_error *error)
{
	EVP_PKEY *pkey = memmem(data, len, "-----BEGIN", 10) != NULL ?
		parse_pem(data, len) : parse_ed25519_seed(data, len);

	*key_r = NULL;
	ERR_clear_error();
	if (pkey == NULL) {
		dkim_error_set(error, "not a PEM private key (or it is "
			       "encrypted), nor a base64 Ed25519 seed");
		return -1;
	}

	dkim_privkey *key = dkim_calloc(1, sizeof(*key));
	key->pkey = pkey;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		key->type = DKIM_KEY_RSA;
		key->bits = (unsigned)EVP_PKEY_get_bits(pkey);
		if (key->bits < DKIM_RSA_MIN_BITS ||
		    key->bits > DKIM_RSA_MAX_BITS) {
			dkim_error_set(error, "RSA key has %u bits; %u to %u "
				       "are accepted", key->bits,
				       DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
			dkim_privkey_free(&key);
			return -1;
		}
		break;
	case EVP_PKEY_ED25519:
		key->type = DKIM_KEY_ED25519;
		key->bits = 256;
		break;
	default:
		dkim_error_set(error, "unsupported key type (only RSA and "
			       "Ed25519 sign DKIM)");
		dkim_privkey_free(&key);
		return -1;
	}
	*key_r = key;
	return 0;
}

static int
read_key_file(int fd, const char *path, struct dkim_buf *data,
	      struct dkim_error *error)
{
	char block[4096];
	ssize_t ret;

	while ((ret = read(fd, block, sizeof(block))) != 0) {
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			dkim_error_set(error, "cannot read key file %s: %s",
				       path, strerror(errno));
			return -1;
		}
		if (data->len + (size_t)ret > DKIM_MAX_KEY_FILE_SIZE) {
			dkim_error_set(error, "key file %s is too large", path);
			return -1;
		}
		dkim_buf_append(data, block, (size_t)ret);
	}
	return 0;
}

/* ---- RequireSafeKeys ----
 *
 * OpenDKIM's dkimf_securefile() resolves the path with realpath() and checks
 * the file and each directory above it: the file belongs to root or to the
 * user loading it and no one else may read or write it; each directory
 * belongs to root or that user and no one else may write to it.  We apply
 * the same rules, with three differences, each for a reason:
 *
 * - The path is walked one name at a time from "/" with openat(), and each
 *   check is made with fstat() on what was opened, so the file read is the
 *   one reached through the checked directories (realpath() and later
 *   stat()s leave a window in which a name can be swapped).
 * - Symbolic links are followed, as OpenDKIM does (administrators link
 *   keys into place), but the directories holding the links are checked
 *   too, and the links must belong to root or the user: whoever can change
 *   a link chooses the key.  OpenDKIM checks only the resolved path.
 * - A directory that others may write to is accepted when it has the
 *   sticky bit (/tmp): then only the owner of an entry, the directory's
 *   owner or root can rename or remove the entry, and those owners are
 *   checked.  OpenDKIM refuses it.  OpenDKIM's exceptions for a group that
 *   holds only the user and root, and for whatever lies below a directory
 *   others cannot enter, are not made: the key file itself must be mode
 *   0600 (or 0400), whoever could reach it. */

#if defined(O_PATH)
#define DIR_OPEN_FLAGS O_PATH	/* no read permission needed */
#elif defined(O_SEARCH)
#define DIR_OPEN_FLAGS O_SEARCH
#else
#define DIR_OPEN_FLAGS O_RDONLY
#endif
/* Symbolic links followed in one key path, as Linux's MAXSYMLINKS. */
#define DKIM_KEY_PATH_MAX_SYMLINKS 40

struct key_walk {
	const char *path;	/* as given */
	uid_t euid;
	struct dkim_buf where;	/* the directory reached, "" for "/" */
	struct dkim_error *error;
};

static const char *
walk_where(const struct key_walk *walk)
{
	return walk->where.len == 0 ? "/" : walk->where.data;
}

static const char *
allowed_owners(const struct key_walk *walk, char *buf, size_t size)
{
	if (walk->euid == 0)
		return "root";
	snprintf(buf, size, "root or uid %u (the user loading the key)",
		 (unsigned)walk->euid);
	return buf;
}

static bool
owner_ok(const struct key_walk *walk, const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == walk->euid;
}

/* `name` is the directory's path (for messages). */
static bool
directory_safe(const struct key_walk *walk, const struct stat *st,
	       const char *name)
{
	char owners[64];

	if (!owner_ok(walk, st)) {
		dkim_error_set(walk->error, DKIM_PRIVKEY_UNSAFE_PREFIX "%s: "
			"directory %s belongs to uid %u, not to %s, so that "
			"user could replace the key: run chown root %s",
			walk->path, name, (unsigned)st->st_uid,
			allowed_owners(walk, owners, sizeof(owners)), name);
		return false;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    (st->st_mode & S_ISVTX) == 0) {
		dkim_error_set(walk->error, DKIM_PRIVKEY_UNSAFE_PREFIX "%s: "
			"directory %s is writable by group or others (mode "
			"%04o), who could replace the key: run chmod go-w %s",
			walk->path, name, (unsigned)(st->st_mode & 07777),
			name);
		return false;
	}
	return true;
}

static bool
key_file_safe(const struct key_walk *walk, const struct stat *st)
{
	char owners[64];

	if (!owner_ok(walk, st)) {
		char euid[16] = "root";

		if (walk->euid != 0)
			snprintf(euid, sizeof(euid), "%u", (unsigned)walk->euid);
		dkim_error_set(walk->error, DKIM_PRIVKEY_UNSAFE_PREFIX "%s: it "
			"belongs to uid %u, not to %s: run chown %s %s, or "
			"load it as uid %u", walk->path, (unsigned)st->st_uid,
			allowed_owners(walk, owners, sizeof(owners)), euid,
			walk->path, (unsigned)st->st_uid);
		return false;
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		dkim_error_set(walk->error, DKIM_PRIVKEY_UNSAFE_PREFIX "%s: "
			"accessible by group or others (mode %04o): make it "
			"readable by its owner only (chmod 600 %s)",
			walk->path, (unsigned)(st->st_mode & 07777),
			walk->path);
		return false;
	}
	return true;
}

static void
walk_fail_errno(const struct key_walk *walk, int err)
{
	dkim_error_set(walk->error, "cannot open key file %s: %s", walk->path,
		       strerror(err));
}

/* Opens a directory below `dir` (or "..") and checks it; returns the new
 * directory or -1. */
static int
walk_enter(struct key_walk *walk, int dir, const char *name)
{
	struct stat st;
	int fd = openat(dir, name, DIR_OPEN_FLAGS | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd < 0) {
		walk_fail_errno(walk, errno);
		return -1;
	}
	if (strcmp(name, "..") == 0) {
		char *slash = strrchr(walk->where.data, '/');
		dkim_buf_truncate(&walk->where, slash == NULL ? 0 :
				  (size_t)(slash - walk->where.data));
	} else {
		dkim_buf_append_c(&walk->where, '/');
		dkim_buf_append_str(&walk->where, name);
	}
	if (fstat(fd, &st) < 0) {
		walk_fail_errno(walk, errno);
	} else if (directory_safe(walk, &st, walk_where(walk))) {
		return fd;
	}
	close(fd);
	return -1;
}

/* A symbolic link in a checked directory: it must belong to root or the
 * user, and its target replaces its name in the rest of the path
 * (*todo, `rest` pointing into it).  An absolute target restarts at "/":
 * *dir is then reopened. */
static int
walk_follow(struct key_walk *walk, int *dir, const char *name,
	    const struct stat *st, struct dkim_buf *todo, const char *rest)
{
	char owners[64], target[PATH_MAX];
	struct dkim_buf next = { 0 };

	if (!owner_ok(walk, st)) {
		dkim_error_set(walk->error, DKIM_PRIVKEY_UNSAFE_PREFIX "%s: "
			"symbolic link %s/%s belongs to uid %u, not to %s: "
			"run chown -h root %s/%s", walk->path, walk->where.data,
			name, (unsigned)st->st_uid,
			allowed_owners(walk, owners, sizeof(owners)),
			walk->where.data, name);
		return -1;
	}
	ssize_t len = readlinkat(*dir, name, target, sizeof(target));
	if (len < 0 || (size_t)len >= sizeof(target)) {
		walk_fail_errno(walk, len < 0 ? errno : ENAMETOOLONG);
		return -1;
	}
	if (len + strlen(rest) + 1 >= PATH_MAX) {
		walk_fail_errno(walk, ENAMETOOLONG);
		return -1;
	}
	dkim_buf_append(&next, target, (size_t)len);
	dkim_buf_append_c(&next, '/');
	dkim_buf_append_str(&next, rest);
	dkim_buf_free(todo);
	*todo = next;
	if (target[0] == '/') {
		int root = open("/", DIR_OPEN_FLAGS | O_DIRECTORY | O_CLOEXEC);
		if (root < 0) {
			walk_fail_errno(walk, errno);
			return -1;
		}
		close(*dir);
		*dir = root;
		dkim_buf_truncate(&walk->where, 0);
	}
	return 0;
}

/* Opens the key file at walk->path, checking everything on the way. */
static int
open_safe_key(struct key_walk *walk)
{
	struct dkim_buf todo = { 0 };
	unsigned symlinks = 0;
	struct stat st;
	int fd = -1;

	if (walk->path[0] == '\0') {
		walk_fail_errno(walk, ENOENT);
		return -1;
	}
	if (walk->path[0] != '/') {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			walk_fail_errno(walk, errno);
			return -1;
		}
		dkim_buf_append_str(&todo, cwd);
		dkim_buf_append_c(&todo, '/');
	}
	dkim_buf_append_str(&todo, walk->path);
	dkim_buf_append_str(&walk->where, "");	/* allocated: "" is "/" */

	int dir = open("/", DIR_OPEN_FLAGS | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		walk_fail_errno(walk, errno);
		goto out;
	}
	if (fstat(dir, &st) < 0) {
		walk_fail_errno(walk, errno);
		goto out;
	}
	if (!directory_safe(walk, &st, "/"))
		goto out;

	for (size_t pos = 0;;) {
		while (todo.data[pos] == '/')
			pos++;
		char *name = todo.data + pos;
		size_t name_len = strcspn(name, "/");
		char *rest = name + name_len;
		if (*rest == '/')
			*rest++ = '\0';
		while (*rest == '/')
			rest++;
		bool last = *rest == '\0';
		pos = (size_t)(rest - todo.data);

		if (name_len == 0 || (last && (strcmp(name, ".") == 0 ||
					       strcmp(name, "..") == 0))) {
			walk_fail_errno(walk, EISDIR);
			goto out;
		}
		if (strcmp(name, ".") == 0)
			continue;
		if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			walk_fail_errno(walk, errno);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++symlinks > DKIM_KEY_PATH_MAX_SYMLINKS) {
				walk_fail_errno(walk, ELOOP);
				goto out;
			}
			if (walk_follow(walk, &dir, name, &st, &todo,
					rest) < 0)
				goto out;
			pos = 0;
		} else if (!last) {
			int next = walk_enter(walk, dir, name);
			if (next < 0)
				goto out;
			close(dir);
			dir = next;
		} else {
			/* O_NONBLOCK: a FIFO put here must not hang us */
			fd = openat(dir, name, O_RDONLY | O_NOFOLLOW |
				    O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd < 0)
				walk_fail_errno(walk, errno);
			break;
		}
	}
out:
	if (dir >= 0)
		close(dir);
	dkim_buf_free(&todo);
	return fd;
}

int
dkim_privkey_load(const char *path, unsigned flags, dkim_privkey **key_r,
		  struct dkim_error *error)
{
	struct key_walk walk = {
		.path = path, .euid = geteuid(), .error = error,
	};
	struct dkim_buf data = { 0 };
	struct stat st;
	int ret = -1;

	*key_r = NULL;
	int fd;
	if ((flags & DKIM_PRIVKEY_ALLOW_UNSAFE) != 0) {
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			walk_fail_errno(&walk, errno);
	} else {
		fd = open_safe_key(&walk);
	}
	dkim_buf_free(&walk.where);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		dkim_error_set(error, "cannot stat key file %s: %s", path,
			       strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		dkim_error_set(error, "key file %s is not a regular file",
			       path);
	} else if ((flags & DKIM_PRIVKEY_ALLOW_UNSAFE) == 0 &&
		   !key_file_safe(&walk, &st)) {
		/* error set */
	} else if (read_key_file(fd, path, &data, error) == 0) {
		struct dkim_error parse_error;
		ret = dkim_privkey_parse(data.data, data.len, key_r,
					 &parse_error);
		if (ret < 0)
			dkim_error_set(error, "key file %s: %s", path,
				       parse_error.text);
	}
	close(fd);
	if (data.data != NULL)
		OPENSSL_cleanse(data.data, data.len);
	dkim_buf_free(&data);
	return ret;
}

enum dkim_key_type
dkim_privkey_type(const dkim_privkey *key)
{
	return key->type;
}

unsigned
dkim_privkey_bits(const dkim_privkey *key)
{
	return key->bits;
}

char *
dkim_privkey_public_record(const dkim_privkey *key)
{
	struct dkim_buf record = { 0 };

	if (key->type == DKIM_KEY_ED25519) {
		unsigned char raw[DKIM_ED25519_KEY_LEN];
		size_t raw_len = sizeof(raw);

		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &raw_len) != 1)
			return NULL;
		dkim_buf_append_str(&record, "v=DKIM1; k=ed25519; p=");
		dkim_base64_encode(&record, raw, raw_len);
	} else {
		unsigned char *der = NULL;
		int der_len = i2d_PUBKEY(key->pkey, &der);

		if (der_len <= 0)
			return NULL;
		dkim_buf_append_str(&record, "v=DKIM1; k=rsa; p=");
		dkim_base64_encode(&record, der, (size_t)der_len);
		OPENSSL_free(der);
	}
	ERR_clear_error();
	return dkim_buf_steal(&record);
}

static bool
bn_param_equals(EVP_PKEY *pkey, const char *name, const unsigned char *value,
		size_t value_len)
{
	BIGNUM *bn = NULL;
	bool equal = false;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) == 1) {
		BIGNUM *other = BN_bin2bn(value, (int)value_len, NULL);
		equal = other != NULL && BN_cmp(bn, other) == 0;
		BN_free(other);
	}
	BN_free(bn);
	return equal;
}

bool
dkim_privkey_matches(const dkim_privkey *key, const dkim_pubkey *pub)
{
	bool match = false;

	if (pub == NULL || key->type != pub->type)
		return false;
	if (key->type == DKIM_KEY_ED25519) {
		unsigned char raw[DKIM_ED25519_KEY_LEN];
		size_t raw_len = sizeof(raw);

		match = EVP_PKEY_get_raw_public_key(key->pkey, raw,
						    &raw_len) == 1 &&
			raw_len == sizeof(raw) &&
			memcmp(raw, pub->ed25519, sizeof(raw)) == 0;
	} else {
		match = bn_param_equals(key->pkey, OSSL_PKEY_PARAM_RSA_N,
					pub->modulus, pub->modulus_len) &&
			bn_param_equals(key->pkey, OSSL_PKEY_PARAM_RSA_E,
					pub->exponent, pub->exponent_len);
	}
	ERR_clear_error();
	return match;
}

void
dkim_privkey_free(dkim_privkey **key)
{
	if (*key == NULL)
		return;
	EVP_PKEY_free((*key)->pkey);
	free(*key);
	*key = NULL;
}
