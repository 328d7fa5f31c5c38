/* Password hashing with argon2id (libargon2, OWASP parameters: t=2,
 * m=19 MiB, p=1, 16-byte salt, 32-byte hash) in PHC string form. Verify
 * accepts only "$argon2id$" strings whose cost parameters are within sane
 * bounds (a corrupted row must not make one login allocate gigabytes).
 * vtp_password_burn spends one verify against a fixed dummy hash so that a
 * login for an unknown user costs as much as one for a known user. */
#include "auth/auth.h"

#include <argon2.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/random.h"

#define PASSWORD_T_COST 2u
#define PASSWORD_M_COST 19456u /* KiB */
#define PASSWORD_PARALLELISM 1u
#define PASSWORD_SALT_LEN 16u
#define PASSWORD_HASH_LEN 32u

/* Upper bounds for parameters read back from a stored hash. Generous enough
 * for a future re-hash with stronger settings. */
#define VERIFY_MAX_T_COST 16ul
#define VERIFY_MAX_M_COST (1024ul * 1024ul) /* 1 GiB */
#define VERIFY_MAX_PARALLELISM 16ul
#define VERIFY_MAX_ENCODED_LEN 512u

static const char argon2id_prefix[] = "$argon2id$";

int vtp_password_hash(const char *password, char **encoded)
{
	unsigned char salt[PASSWORD_SALT_LEN];
	size_t enclen;
	char *out = NULL;
	int rc = VTP_EINVAL;
	int arc;

	if (!encoded)
		return VTP_EINVAL;
	*encoded = NULL;
	if (!password)
		goto out;
	vtp_random_bytes(salt, sizeof(salt));
	enclen = argon2_encodedlen(PASSWORD_T_COST, PASSWORD_M_COST,
				   PASSWORD_PARALLELISM, PASSWORD_SALT_LEN,
				   PASSWORD_HASH_LEN, Argon2_id);
	out = vtp_malloc(enclen);
	arc = argon2id_hash_encoded(PASSWORD_T_COST, PASSWORD_M_COST,
				    PASSWORD_PARALLELISM, password,
				    strlen(password), salt, sizeof(salt),
				    PASSWORD_HASH_LEN, out, enclen);
	if (arc != ARGON2_OK) {
		VTP_ERROR("argon2id hashing failed: %s", argon2_error_message(arc));
		rc = arc == ARGON2_MEMORY_ALLOCATION_ERROR ? VTP_EUNAVAIL
							   : VTP_EINTERNAL;
		goto out;
	}
	*encoded = out;
	out = NULL;
	rc = 0;
out:
	vtp_free(out);
	return rc;
}

/* Reads decimal digits at *p (no sign, no leading '+', at most 10 digits)
 * and advances *p. */
static bool read_number(const char **p, unsigned long *value)
{
	const char *s = *p;
	unsigned long v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9') {
		if (++n > 10)
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		s++;
	}
	if (n == 0)
		return false;
	*p = s;
	*value = v;
	return true;
}

static bool expect(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* "$argon2id$v=19$m=<m>,t=<t>,p=<p>$..." with bounded m, t, p. The rest
 * is left to libargon2's decoder. */
static bool params_acceptable(const char *encoded)
{
	const char *p = encoded;
	unsigned long version, m, t, par;

	if (strnlen(encoded, VERIFY_MAX_ENCODED_LEN + 1) > VERIFY_MAX_ENCODED_LEN)
		return false;
	if (!expect(&p, argon2id_prefix) || !expect(&p, "v=") ||
	    !read_number(&p, &version) || !expect(&p, "$m=") ||
	    !read_number(&p, &m) || !expect(&p, ",t=") ||
	    !read_number(&p, &t) || !expect(&p, ",p=") ||
	    !read_number(&p, &par) || *p != '$')
		return false;
	return version == ARGON2_VERSION_13 && m <= VERIFY_MAX_M_COST &&
	       t >= 1 && t <= VERIFY_MAX_T_COST && par >= 1 &&
	       par <= VERIFY_MAX_PARALLELISM;
}

bool vtp_password_verify(const char *encoded, const char *password)
{
	if (!encoded || !*encoded || !password)
		return false;
	if (!params_acceptable(encoded))
		return false;
	return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char *dummy_hash;

static void make_dummy_hash(void)
{
	char secret[33];

	/* A password nobody knows: the verify below must always fail. */
	vtp_random_hex(secret, 16);
	if (vtp_password_hash(secret, &dummy_hash) != 0)
		dummy_hash = NULL;
}

void vtp_password_burn(const char *password)
{
	pthread_once(&dummy_once, make_dummy_hash);
	if (!dummy_hash)
		return;
	(void)vtp_password_verify(dummy_hash, password ? password : "");
}
