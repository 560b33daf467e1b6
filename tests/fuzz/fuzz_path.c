/* Fuzz harness for the path rules (base/path.h). The first input byte picks a mode:
 *   0: the rest is a path for qs_path_check / qs_path_init;
 *   1: the rest (to the first NUL) is typed by a user whose root is /r and cwd /r/d;
 *   2: the rest is "root\0cwd\0typed" for qs_path_normalize.
 * Every answer is compared with slow, independent checkers written here from the rules in
 * docs/paths.md: a path is accepted exactly when it breaks no rule, and a refusal names a
 * rule it breaks; the normalizer agrees with a rewrite-based resolver. Any disagreement
 * aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

enum {
	V_EMPTY = 1 << 0,
	V_TOO_LONG = 1 << 1,
	V_ABSOLUTE = 1 << 2,
	V_NUL = 1 << 3,
	V_CONTROL = 1 << 4,
	V_BACKSLASH = 1 << 5,
	V_UTF8 = 1 << 6,
	V_NAME_TOO_LONG = 1 << 7,
	V_EMPTY_NAME = 1 << 8,
	V_DOT = 1 << 9,
	V_DOTDOT = 1 << 10,
};

static unsigned flag_of(int rc)
{
	switch (rc) {
	case QS_EPATH_EMPTY: return V_EMPTY;
	case QS_EPATH_TOO_LONG: return V_TOO_LONG;
	case QS_EPATH_ABSOLUTE: return V_ABSOLUTE;
	case QS_EPATH_NUL: return V_NUL;
	case QS_EPATH_CONTROL: return V_CONTROL;
	case QS_EPATH_BACKSLASH: return V_BACKSLASH;
	case QS_EPATH_UTF8: return V_UTF8;
	case QS_EPATH_NAME_TOO_LONG: return V_NAME_TOO_LONG;
	case QS_EPATH_EMPTY_NAME: return V_EMPTY_NAME;
	case QS_EPATH_DOT: return V_DOT;
	case QS_EPATH_DOTDOT: return V_DOTDOT;
	default: abort(); /* no other code may come out of the validator */
	}
}

/* Decodes one UTF-8 sequence the textbook way (lead byte gives the length, then the value is
 * assembled and range-checked), unlike the validator's byte-range table. Returns the
 * length, or 0 if invalid; writes the code point. */
static size_t slow_decode(const uint8_t *s, size_t avail, uint32_t *cp)
{
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n;
	uint32_t v;
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2;
		v = s[0] & 0x1Fu;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3;
		v = s[0] & 0x0Fu;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4;
		v = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3Fu);
	}
	if (v < min[n] || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
		return 0;
	*cp = v;
	return n;
}

static unsigned slow_bytes(const uint8_t *s, size_t len)
{
	unsigned v = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp = s[i];
		size_t n = 1;
		if (s[i] >= 0x80) {
			n = slow_decode(s + i, len - i, &cp);
			if (n == 0) {
				v |= V_UTF8;
				i++;
				continue;
			}
		}
		if (cp == 0)
			v |= V_NUL;
		else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			v |= V_CONTROL;
		else if (cp == '\\')
			v |= V_BACKSLASH;
		i += n;
	}
	return v;
}

static unsigned slow_names(const uint8_t *s, size_t len)
{
	unsigned v = 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		size_t n = i - start;
		if (n == 0)
			v |= V_EMPTY_NAME;
		else if (n == 1 && s[start] == '.')
			v |= V_DOT;
		else if (n == 2 && s[start] == '.' && s[start + 1] == '.')
			v |= V_DOTDOT;
		else if (n > 255)
			v |= V_NAME_TOO_LONG;
		start = i + 1;
	}
	return v;
}

/* Every rule the path breaks, as V_* flags. */
static unsigned slow_violations(const uint8_t *s, size_t len)
{
	if (len == 0)
		return V_EMPTY;
	unsigned v = slow_bytes(s, len) | slow_names(s, len);
	if (len > 4096)
		v |= V_TOO_LONG;
	bool letter = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');
	if (s[0] == '/' || (len >= 2 && letter && s[1] == ':'))
		v |= V_ABSOLUTE;
	return v;
}

static void check_helpers(const struct qs_path *p)
{
	size_t name_len;
	const char *name = qs_path_name(p, &name_len);
	CHECK(name_len > 0 && name_len <= p->len);
	struct qs_path parent, again;
	int rc = qs_path_parent(&parent, p);
	if (rc == QS_ENOENT) {
		CHECK(name_len == p->len);
		CHECK(qs_path_join(&again, NULL, name, name_len) == 0);
	} else {
		CHECK(rc == 0);
		CHECK(slow_violations((const uint8_t *)parent.str, parent.len) == 0);
		CHECK(qs_path_is_inside(p, &parent) && !qs_path_is_inside(&parent, p));
		CHECK(qs_path_cmp(&parent, p) < 0);
		CHECK(qs_path_join(&again, &parent, name, name_len) == 0);
		qs_path_release(&parent);
	}
	CHECK(qs_path_equal(&again, p) && qs_path_cmp(&again, p) == 0);
	CHECK(!qs_path_is_inside(p, p));
	qs_path_release(&again);
}

static void fuzz_validator(const uint8_t *s, size_t len)
{
	unsigned v = slow_violations(s, len);
	int rc = qs_path_check((const char *)s, len);
	if (rc != 0) {
		CHECK((v & flag_of(rc)) != 0);
		return;
	}
	CHECK(v == 0);
	struct qs_path p;
	CHECK(qs_path_init(&p, (const char *)s, len) == 0);
	CHECK(p.len == len && memcmp(p.str, s, len) == 0 && p.str[len] == '\0');
	check_helpers(&p);
	/* A valid path typed at the root is its own normalization. */
	struct qs_path n;
	CHECK(qs_path_normalize(&n, "/r", "/r", p.str) == 0);
	CHECK(qs_path_equal(&n, &p));
	qs_path_release(&n);
	qs_path_release(&p);
}

/* Resolves an absolute path the slow way: append '/', then rewrite "//" -> "/", "/./" ->
 * "/", a leading "/../" -> "/" and "/name/../" -> "/" until nothing changes; drop the final
 * '/' unless the result is "/". s has room for strlen(s) + 2 bytes. */
static void slow_clean(char *s)
{
	size_t len = strlen(s);
	s[len++] = '/';
	s[len] = '\0';
	for (;;) {
		char *m;
		if ((m = strstr(s, "//")) != NULL) {
			memmove(m, m + 1, strlen(m + 1) + 1);
		} else if ((m = strstr(s, "/./")) != NULL) {
			memmove(m, m + 2, strlen(m + 2) + 1);
		} else if (strncmp(s, "/../", 4) == 0) {
			memmove(s, s + 3, strlen(s + 3) + 1);
		} else if ((m = strstr(s, "/../")) != NULL) {
			char *prev = m - 1;
			while (*prev != '/')
				prev--;
			CHECK(!(m - prev == 3 && prev[1] == '.' && prev[2] == '.'));
			memmove(prev, m + 3, strlen(m + 3) + 1);
		} else {
			break;
		}
	}
	len = strlen(s);
	if (len > 1)
		s[len - 1] = '\0';
}

/* The slow resolver's verdict: 0 with *rem set, QS_EPATH_EMPTY or QS_EPATH_OUTSIDE. */
static int slow_below(const char *root, const char *abs, const char **rem)
{
	size_t rl = strlen(root);
	if (strcmp(root, abs) == 0)
		return QS_EPATH_EMPTY;
	if (rl == 1) {
		*rem = abs + 1;
		return 0;
	}
	if (strncmp(root, abs, rl) != 0 || abs[rl] != '/')
		return QS_EPATH_OUTSIDE;
	*rem = abs + rl + 1;
	return 0;
}

static int slow_normalize(const char *root, const char *cwd, const char *typed, char *rbuf,
			  char *abuf, const char **rem)
{
	if (root[0] != '/' || cwd[0] != '/')
		return QS_EINVAL;
	if (typed[0] == '\0')
		return QS_EPATH_EMPTY;
	memcpy(rbuf, root, strlen(root) + 1);
	slow_clean(rbuf);
	abuf[0] = '\0';
	if (typed[0] != '/') {
		memcpy(abuf, cwd, strlen(cwd));
		abuf[strlen(cwd)] = '/';
		abuf[strlen(cwd) + 1] = '\0';
	}
	memcpy(abuf + strlen(abuf), typed, strlen(typed) + 1);
	slow_clean(abuf);
	return slow_below(rbuf, abuf, rem);
}

/* Inputs this long are only checked for crashes and the validity of the result: the
 * rewrite resolver is cubic. */
#define SLOW_MAX 512

static void fuzz_normalizer(const char *root, const char *cwd, const char *typed)
{
	struct qs_path out;
	int rc = qs_path_normalize(&out, root, cwd, typed);
	if (rc == 0) {
		CHECK(slow_violations((const uint8_t *)out.str, out.len) == 0);
		check_helpers(&out);
	}
	size_t total = strlen(root) + strlen(cwd) + strlen(typed);
	if (total <= SLOW_MAX) {
		char rbuf[SLOW_MAX + 2], abuf[SLOW_MAX + 3];
		const char *rem = NULL;
		int want = slow_normalize(root, cwd, typed, rbuf, abuf, &rem);
		if (want != 0) {
			CHECK(rc == want);
		} else {
			unsigned v = slow_violations((const uint8_t *)rem, strlen(rem));
			if (v == 0)
				CHECK(rc == 0 && strcmp(out.str, rem) == 0);
			else
				CHECK(rc != 0 && (v & flag_of(rc)) != 0);
		}
	}
	if (rc == 0)
		qs_path_release(&out);
}

/* Splits the input into up to three NUL-terminated strings (missing ones are ""). */
static void fuzz_three(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 3);
	CHECK(buf != NULL);
	memcpy(buf, data, size);
	memset(buf + size, 0, 3);
	/* The three trailing NULs keep every string inside buf. */
	const char *root = buf;
	const char *cwd = root + strlen(root) + 1;
	const char *typed = cwd + strlen(cwd) + 1;
	fuzz_normalizer(root, cwd, typed);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const uint8_t *rest = data + 1;
	size_t n = size - 1;
	switch (data[0] % 3) {
	case 0: fuzz_validator(rest, n); break;
	case 1: {
		char *typed = malloc(n + 1);
		CHECK(typed != NULL);
		memcpy(typed, rest, n);
		typed[n] = '\0';
		fuzz_normalizer("/r", "/r/d", typed);
		free(typed);
		break;
	}
	default: fuzz_three(rest, n); break;
	}
	return 0;
}
